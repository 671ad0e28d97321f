"""MySQL / MariaDB source: discovery with PyMySQL, streamed text-protocol reads (mysqlclient when
installed, PyMySQL otherwise) parsed into exact Arrow types."""
