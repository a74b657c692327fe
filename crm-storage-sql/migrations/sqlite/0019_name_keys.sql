-- MariaDB keys names whole from here (migrations/mysql/0019_name_keys.sql); this
-- backend already does: nothing changes.
SELECT 1;
