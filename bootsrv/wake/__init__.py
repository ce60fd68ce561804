"""Wake-on-LAN: the magic packet (`packet`), where it goes and how it is sent (`send`), which
clients a request names (`clients`), and the cron schedules that wake clients and the
snapshot schedules' wake-first wait (`schedule`)."""
