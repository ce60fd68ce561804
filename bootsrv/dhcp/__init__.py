"""DHCP and PXE: a packet codec, a lease store and a sans-IO policy; service.py is the socket shell."""
