/*
 * Console output: a small printf (%d %i %u %x %X %o %p %s %c %%, flags - 0 + space #, width and
 * precision with *, length modifiers hh h l ll z j t) and the COM1 writer, plus rt_exit and
 * rt_panic.
 *
 * Formatting runs at ring 3 into a buffer; each full buffer is one RT_SYS_WRITE (one
 * `rep outsb`, one exit to the VMM).  A ring-3 spinlock keeps one printf's output together
 * when several CPUs print: string I/O under QEMU's TCG is per byte.  At ring 0 (the trap
 * handler) output bypasses the lock.  The formatter itself works at either ring.
 */
#include "guest/rt/internal.h"

#define PRINTF_BUFFER 256

struct sink {
	char *buf;
	size_t cap;   /* bytes buf can hold */
	size_t len;   /* bytes in buf */
	size_t total; /* bytes produced, as printf returns */
	bool flush;   /* console sink: write out when full; otherwise truncate */
};

static void sink_flush(struct sink *sink)
{
	if (sink->flush && sink->len) {
		rt_write(sink->buf, sink->len);
		sink->len = 0;
	}
}

static void sink_put(struct sink *sink, char c)
{
	if (sink->len == sink->cap)
		sink_flush(sink);
	if (sink->len < sink->cap)
		sink->buf[sink->len++] = c;
	sink->total++;
}

static void sink_repeat(struct sink *sink, char c, int count)
{
	while (count-- > 0)
		sink_put(sink, c);
}

struct spec {
	bool left, zero, plus, space, alt;
	int width, precision; /* precision < 0: none */
};

static void put_string(struct sink *sink, const struct spec *spec, const char *s)
{
	int len = 0;

	if (!s)
		s = "(null)";
	while (s[len] && (spec->precision < 0 || len < spec->precision))
		len++;
	if (!spec->left)
		sink_repeat(sink, ' ', spec->width - len);
	for (int i = 0; i < len; i++)
		sink_put(sink, s[i]);
	if (spec->left)
		sink_repeat(sink, ' ', spec->width - len);
}

static void put_number(struct sink *sink, const struct spec *spec, uint64_t value, bool negative,
		       unsigned base, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	const char *prefix = "";
	int ndigits = 0, zeros, pad;

	if (negative)
		prefix = "-";
	else if (spec->plus)
		prefix = "+";
	else if (spec->space)
		prefix = " ";
	if (spec->alt && value && base == 16)
		prefix = upper ? "0X" : "0x";
	else if (spec->alt && base == 8)
		prefix = "0";
	while (value) {
		tmp[ndigits++] = digits[value % base];
		value /= base;
	}
	if (!ndigits && spec->precision != 0 && !(spec->alt && base == 8))
		tmp[ndigits++] = '0';
	zeros = spec->precision > ndigits ? spec->precision - ndigits : 0;
	pad = spec->width - ndigits - zeros - (int)strlen(prefix);
	if (spec->zero && !spec->left && spec->precision < 0) {
		zeros += pad > 0 ? pad : 0;
		pad = 0;
	}
	if (!spec->left)
		sink_repeat(sink, ' ', pad);
	for (; *prefix; prefix++)
		sink_put(sink, *prefix);
	sink_repeat(sink, '0', zeros);
	while (ndigits)
		sink_put(sink, tmp[--ndigits]);
	if (spec->left)
		sink_repeat(sink, ' ', pad);
}

static int parse_int(const char **fmt)
{
	int value = 0;

	while (**fmt >= '0' && **fmt <= '9')
		value = value * 10 + (*(*fmt)++ - '0');
	return value;
}

static void format(struct sink *sink, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		struct spec spec = { .precision = -1 };
		int size = 0; /* 'H' hh, 'h', 0 int, 'l' long and wider */
		bool is_signed = false;
		unsigned base = 10;
		uint64_t value;

		if (*fmt != '%') {
			sink_put(sink, *fmt);
			continue;
		}
		for (;; fmt++) {
			char f = fmt[1];

			if (f == '-')
				spec.left = true;
			else if (f == '0')
				spec.zero = true;
			else if (f == '+')
				spec.plus = true;
			else if (f == ' ')
				spec.space = true;
			else if (f == '#')
				spec.alt = true;
			else
				break;
		}
		fmt++;
		if (*fmt == '*') {
			spec.width = va_arg(ap, int);
			if (spec.width < 0) {
				spec.left = true;
				spec.width = -spec.width;
			}
			fmt++;
		} else {
			spec.width = parse_int(&fmt);
		}
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				spec.precision = va_arg(ap, int);
				fmt++;
			} else {
				spec.precision = parse_int(&fmt);
			}
		}
		for (;; fmt++) {
			if (*fmt == 'h')
				size = size == 'h' ? 'H' : 'h';
			else if (*fmt == 'l' || *fmt == 'z' || *fmt == 'j' || *fmt == 't')
				size = 'l';
			else
				break;
		}
		switch (*fmt) {
		case 'c':
			sink_repeat(sink, ' ', spec.left ? 0 : spec.width - 1);
			sink_put(sink, (char)va_arg(ap, int));
			sink_repeat(sink, ' ', spec.left ? spec.width - 1 : 0);
			continue;
		case 's':
			put_string(sink, &spec, va_arg(ap, const char *));
			continue;
		case 'p':
			spec.alt = true;
			put_number(sink, &spec, (uintptr_t)va_arg(ap, void *), false, 16, false);
			continue;
		case 'd':
		case 'i':
			is_signed = true;
			break;
		case 'u':
			break;
		case 'x':
		case 'X':
			base = 16;
			break;
		case 'o':
			base = 8;
			break;
		case '%':
			sink_put(sink, '%');
			continue;
		default: /* unknown conversion: show it */
			sink_put(sink, '%');
			if (!*fmt)
				return;
			sink_put(sink, *fmt);
			continue;
		}
		if (size == 'l')
			value = va_arg(ap, uint64_t);
		else
			value = va_arg(ap, unsigned int);
		if (is_signed) {
			int64_t v = size == 'l' ? (int64_t)value :
				    size == 'h' ? (int16_t)value :
				    size == 'H' ? (int8_t)value :
						  (int32_t)value;

			put_number(sink, &spec, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10,
				   false);
			continue;
		}
		if (size == 'h')
			value = (uint16_t)value;
		else if (size == 'H')
			value = (uint8_t)value;
		put_number(sink, &spec, value, false, base, *fmt == 'X');
	}
}

int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink sink = { .buf = buf, .cap = size ? size - 1 : 0 };

	format(&sink, fmt, ap);
	if (size)
		buf[sink.len] = '\0';
	return sink.total;
}

int rt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = rt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return len;
}

static void console_lock(void)
{
	while (__atomic_exchange_n(&rt_state.console_lock, 1, __ATOMIC_ACQUIRE))
		while (rt_state.console_lock)
			rt_pause();
}

static void console_unlock(void)
{
	__atomic_store_n(&rt_state.console_lock, 0, __ATOMIC_RELEASE);
}

void rt_write(const char *buf, size_t len)
{
	if (rt_at_ring0())
		rt_kernel_write(buf, len);
	else
		rt_syscall(RT_SYS_WRITE, (long)buf, len, 0);
}

int rt_vprintf(const char *fmt, va_list ap)
{
	char buf[PRINTF_BUFFER];
	struct sink sink = { .buf = buf, .cap = sizeof(buf), .flush = true };
	bool lock = !rt_at_ring0();

	if (lock)
		console_lock();
	format(&sink, fmt, ap);
	sink_flush(&sink);
	if (lock)
		console_unlock();
	return sink.total;
}

int rt_printf(const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = rt_vprintf(fmt, ap);
	va_end(ap);
	return len;
}

void rt_exit(int code)
{
	if (rt_at_ring0())
		rt_kernel_exit(code);
	rt_syscall(RT_SYS_EXIT, code, 0, 0);
	__builtin_unreachable();
}

void rt_panic(const char *fmt, ...)
{
	va_list ap;

	rt_printf("panic: cpu %u: ", rt_cpu_index());
	va_start(ap, fmt);
	rt_vprintf(fmt, ap);
	va_end(ap);
	rt_printf("\n");
	rt_exit(RT_EXIT_ERROR);
}
