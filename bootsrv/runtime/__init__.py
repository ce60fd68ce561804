"""The composition root: configuration -> stores, targets, services -> one running appliance.

`appliance` starts and stops the services (`services`), `boot` carries out what DHCP asks for, `inventory` owns the disks, targets,
units and clients, `reload` plans and applies a configuration change, `naming` holds the naming
rules. Importing this package imports nothing: import the module you need.
"""
