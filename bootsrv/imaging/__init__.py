"""Golden images and their versions: what is recorded (versions) and what a running
appliance does with them (manager)."""
