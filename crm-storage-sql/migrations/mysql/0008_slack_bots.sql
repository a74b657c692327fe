-- A Slack channel can post through a bot (chat.postMessage) instead of an incoming
-- webhook: its token (sealed) and the Slack channel it posts to. `url` is empty then.

ALTER TABLE `chat_channels` ADD COLUMN `token` LONGTEXT;
ALTER TABLE `chat_channels` ADD COLUMN `channel` LONGTEXT;
