"""MySQL / MariaDB row-based binlog (``mysql-replication``) as a CDC source."""
