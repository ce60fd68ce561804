# The two set-up commands of the README: `make demo` and `make test`.
# Each installs what it needs: Debian packages for the real peers, and a venv.

PYTHON ?= python3
VENV := .venv
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Real peers the tests drive (libiscsi tools, qemu-img with its iscsi driver, libvhdi,
# QEMU with iPXE ROMs as a diskless client) and
# tgt, the reference target the benchmarks run beside us; chromium for the dashboard test;
# kea-admin for perfdhcp (bench/dhcp.py: DHCP load against bootsrv and dnsmasq);
# the tools that build the real-Linux golden image of the boot tests (tests/support/linux_image.py):
# SYSLINUX and GRUB EFI, mtools and mkfs.fat for its FAT partition, mke2fs for its root, readelf;
# xorriso and ISOLINUX for the installer ISO of the install tests (tests/support/installer_iso.py).
APT_PACKAGES := libiscsi-bin qemu-utils qemu-block-extra tgt python3-venv libvhdi-utils python3-libvhdi qemu-system-x86 ipxe-qemu iproute2 ipxe bind9-dnsutils curl dnsmasq-base ovmf chromium kea-admin \
	syslinux syslinux-common mtools dosfstools e2fsprogs grub-efi-amd64-bin grub-common binutils \
	xorriso isolinux

.PHONY: demo serve-demo test bench soak dist deps clean

# The lab demo: a diskless QEMU machine boots from bootsrv in a private network
# namespace, then its disk is snapshotted and exported (needs root: ip netns).
demo: deps $(VENV)/.installed
	$(SUDO) $(VENV)/bin/python demo/lab.py

# A plain iSCSI target on 127.0.0.1:3260 (no root needed); Ctrl-C stops it.
serve-demo: deps $(VENV)/.installed
	@echo "Serving examples/demo.toml; try: iscsi-ls -s iscsi://127.0.0.1:3260   (Ctrl-C stops)"
	$(VENV)/bin/bootsrv serve --config examples/demo.toml

test: deps $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q

# bootsrv beside tgt (and dnsmasq + tgt for network boot), then the goals table;
# the network boot needs root.
bench: deps $(VENV)/.installed
	$(SUDO) $(VENV)/bin/python bench/run.py

# The long part of the faults suite (about 30 minutes; root for the power cuts):
# 10^6 mutated protocol inputs, abuse over TCP, 100 power cuts, 10 minutes of 256 sessions.
soak: deps $(VENV)/.installed
	$(SUDO) $(VENV)/bin/python bench/soak.py

# One file, no Python needed where it runs: dist/bootsrv (Linux x86_64).
dist: deps $(VENV)/.installed
	$(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller packaging/bootsrv.spec
	@ls -l dist/bootsrv

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,build]'
	touch $@

clean:
	rm -rf $(VENV) build dist *.egg-info examples/state
