/* /init for an arm64 guest without a libc: finit_module() each /N.ko named in MODULES, say
 * each result on the console, then reboot (QEMU -no-reboot exits). */
typedef unsigned long u64;

static long sys(long n, long a, long b, long c, long d)
{
	register long x8 asm("x8") = n, x0 asm("x0") = a, x1 asm("x1") = b, x2 asm("x2") = c,
		x3 asm("x3") = d;
	asm volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
}

static void say(const char *s)
{
	long n = 0;
	while (s[n])
		n++;
	sys(64, 1, (long)s, n, 0);		/* write(1, ...) */
}

static void number(long v)
{
	char buf[24], *p = buf + 23;
	int neg = v < 0;
	*p = 0;
	if (neg)
		v = -v;
	do { *--p = '0' + v % 10; v /= 10; } while (v);
	if (neg)
		*--p = '-';
	say(p);
}

void _start(void)
{
	static const char *modules[] = { MODULES, 0 };
	int console = sys(56, -100, (long)"/dev/console", 2, 0);	/* openat(AT_FDCWD, O_RDWR) */
	if (console >= 0 && console != 1)
		sys(24, console, 1, 0, 0);	/* dup3 */
	for (const char **m = modules; *m; m++) {
		int status = 0;
		long pid = sys(220, 17, 0, 0, 0);	/* clone(SIGCHLD): fork */
		if (pid == 0) {
			long fd = sys(56, -100, (long)*m, 0, 0);
			long r = sys(273, fd, (long)"", 0, 0);	/* finit_module */
			say("insmod "); say(*m); say(": "); number(r); say("\n");
			sys(93, 0, 0, 0, 0);		/* exit */
		}
		sys(260, pid, (long)&status, 0, 0);	/* wait4 */
		say("insmod "); say(*m); say(" wait status: "); number(status); say("\n");
	}
	sys(142, 0xfee1dead, 672274793, 0x01234567, 0);	/* reboot(RESTART) */
	for (;;)
		;
}
