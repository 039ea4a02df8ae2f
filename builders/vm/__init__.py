"""Disposable QEMU builder VMs: the machine side of the `vm` pool, as a resalloc-style CLI.

    python3 -m builders.vm image   build or find the cached base image (builders/vm/image.py)
    python3 -m builders.vm new     boot a VM named $COPRSITE_MACHINE_NAME, print how to SSH in
    python3 -m builders.vm delete  destroy it (idempotent)
    python3 -m builders.vm list    names of the VMs that exist

The pool drives a VM made by `new` like any SSH builder host (builders/transports/ssh.py).
"""
