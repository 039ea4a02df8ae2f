/*
 * /init of a builder VM's initramfs: load the few drivers that find the root disk, mount
 * it, and hand over to the guest's init (guest_init.py) on it.
 *
 * Debian's own initramfs does the same with udev, which walks every device of the machine:
 * about 15 s of each boot under software emulation. This is a static program, compiled by
 * `python3 -m builders.vm image` with the image's own gcc; the modules it loads, in order,
 * are named in /modules/order (one file name a line, dependencies first).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ROOT_DEVICE "/dev/vda"
#define GUEST_INIT "/usr/local/sbin/coprsite-init"
#define DEVICE_WAIT_STEPS 200 /* of 50 ms: how long the root disk may take to appear */

static void warn(const char *what)
{
	fprintf(stderr, "coprsite-initramfs: %s: %s\n", what, strerror(errno));
}

static void fail(const char *what)
{
	fprintf(stderr, "coprsite-initramfs: %s: %s\n", what, strerror(errno));
	/* PID 1 exiting panics the kernel; QEMU (-no-reboot) then exits. */
	_exit(1);
}

static void load_modules(void)
{
	char name[256], path[300];
	FILE *order = fopen("/modules/order", "r");
	if (!order)
		fail("/modules/order");
	while (fgets(name, sizeof name, order)) {
		name[strcspn(name, "\n")] = 0;
		snprintf(path, sizeof path, "/modules/%s", name);
		int module = open(path, O_RDONLY | O_CLOEXEC);
		if (module < 0)
			fail(path);
		/* Not fatal: one of two alternatives (crc32c-intel needs SSE 4.2) may not load;
		 * a missing driver shows as a root disk that never appears. */
		if (syscall(SYS_finit_module, module, "", 0) != 0 && errno != EEXIST)
			warn(path);
		close(module);
	}
	fclose(order);
}

static void wait_for_root_device(void)
{
	struct stat status;
	struct timespec pause = {0, 50 * 1000 * 1000};
	for (int step = 0; step < DEVICE_WAIT_STEPS; step++) {
		if (stat(ROOT_DEVICE, &status) == 0)
			return;
		nanosleep(&pause, NULL);
	}
	fail(ROOT_DEVICE);
}

int main(void)
{
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0)
		fail("mount /dev");
	load_modules();
	wait_for_root_device();
	if (mount(ROOT_DEVICE, "/root", "ext4", 0, NULL) != 0)
		fail("mount " ROOT_DEVICE);
	if (mount("/dev", "/root/dev", NULL, MS_MOVE, NULL) != 0)
		fail("move /dev");
	/* switch_root: the root disk becomes / (the initramfs stays, a few MB, unreachable). */
	if (chdir("/root") != 0 || mount(".", "/", NULL, MS_MOVE, NULL) != 0 || chroot(".") != 0 ||
	    chdir("/") != 0)
		fail("switch to the root disk");
	char *const argv[] = {GUEST_INIT, NULL};
	execv(GUEST_INIT, argv);
	fail(GUEST_INIT);
	return 1;
}
