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
# xorriso and ISOLINUX for the installer ISO of the install tests (tests/support/installer_iso.py);
# a one-node Ceph cluster the RBD tests start (tests/support/ceph.py) with librados' and librbd's
# Python modules, and tgt-rbd (tgt's --bstype rbd) for the RBD benchmark beside tgt.
APT_PACKAGES := libiscsi-bin qemu-utils qemu-block-extra tgt python3-venv libvhdi-utils python3-libvhdi qemu-system-x86 ipxe-qemu iproute2 ipxe bind9-dnsutils curl dnsmasq-base ovmf chromium kea-admin \
	syslinux syslinux-common mtools dosfstools e2fsprogs grub-efi-amd64-bin grub-common binutils \
	xorriso isolinux \
	ceph-mon ceph-mgr ceph-osd ceph-common python3-rbd python3-rados tgt-rbd
# open-isns's isnsd and isnsadm: the real iSNS server the iSNS registration test registers with
APT_PACKAGES += open-isns-server open-isns-utils
# lintian judges the Debian package (make deb, tests/e2e/test_deb.py); dpkg-dev's dpkg-shlibdeps computes its Depends;
# systemd-analyze verifies its unit.
APT_PACKAGES += lintian dpkg-dev systemd

.PHONY: demo serve-demo test bench soak dist deb deps venv clean

# The lab demo: a diskless QEMU machine boots from bootsrv in a private network
# namespace, then its disk is snapshotted and exported (needs root: ip netns).
demo: deps venv
	$(SUDO) $(VENV)/bin/python demo/lab.py

# A plain iSCSI target on 127.0.0.1:3260 (no root needed); Ctrl-C stops it.
serve-demo: deps venv
	@echo "Serving examples/demo.toml; try: iscsi-ls -s iscsi://127.0.0.1:3260   (Ctrl-C stops)"
	$(VENV)/bin/bootsrv serve --config examples/demo.toml

test: deps venv
	$(VENV)/bin/python -m pytest -q --durations=40

# bootsrv beside tgt (and dnsmasq + tgt for network boot), then the goals table;
# the network boot needs root.
bench: deps venv
	$(SUDO) $(VENV)/bin/python bench/run.py

# The long part of the faults suite (about 30 minutes; root for the power cuts):
# 10^6 mutated protocol inputs, abuse over TCP, 100 power cuts, 10 minutes of 256 sessions.
soak: deps venv
	$(SUDO) $(VENV)/bin/python bench/soak.py

# One file, no Python needed where it runs: dist/bootsrv (Linux x86_64).
dist: deps venv
	$(VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller packaging/bootsrv.spec
	@ls -l dist/bootsrv

# The Debian package of that binary: dist/bootsrv_VERSION_amd64.deb (packaging/deb/build.py).
deb: dist
	$(VENV)/bin/python packaging/deb/build.py --binary dist/bootsrv --out dist --work build/deb

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

# Debian's librados and librbd Python modules (python3-rados, python3-rbd: CPython 3.11) in the
# venv: a folder of symlinks to just those two, named by a .pth, because putting all of
# /usr/lib/python3/dist-packages on the path would shadow the venv's own packages (requests ...).
# Only modules of the venv's ABI are linked. Rebuilt on every run (a few symlinks), so it follows
# packages installed or removed after the venv was made; without them the folder is empty,
# `import rbd` fails and the Ceph tests skip.
SYSTEM_DIST := /usr/lib/python3/dist-packages
SYSTEM_LINKS := $(VENV)/system-python
venv: $(VENV)/.installed
	@abi=$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))'); \
	site=$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))'); \
	mkdir -p $(SYSTEM_LINKS); \
	for mod in rados rbd; do \
		so=$$mod$$abi; \
		if [ -e $(SYSTEM_DIST)/$$so ]; then ln -sfn $(SYSTEM_DIST)/$$so $(SYSTEM_LINKS)/$$so; \
		else rm -f $(SYSTEM_LINKS)/$$so; fi; \
	done; \
	cd $(SYSTEM_LINKS) && pwd > $$site/bootsrv-system-python.pth

clean:
	rm -rf $(VENV) build dist *.egg-info examples/state
