-- A Slack channel can post through a bot (chat.postMessage) instead of an incoming
-- webhook: its token (sealed) and the Slack channel it posts to. `url` is empty then.

ALTER TABLE chat_channels ADD COLUMN token TEXT COLLATE "C";
ALTER TABLE chat_channels ADD COLUMN channel TEXT COLLATE "C";
