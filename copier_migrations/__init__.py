"""Scripts copier runs on update to migrate answers between template releases."""
