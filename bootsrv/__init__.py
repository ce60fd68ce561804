"""bootsrv: a boot-and-backup appliance for a LAN."""

__version__ = "0.1.0"
