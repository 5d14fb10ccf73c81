/*
 * The C library pieces a freestanding program still needs: the mem* functions GCC may call on
 * its own, a few string functions, the bump allocator over the RAM above the image, and
 * sorting and summarising of measurement samples.
 *
 * memcpy/memset use `rep movsb`/`rep stosb`: native and fast at ring 3, and written in asm so
 * the compiler cannot turn them back into calls to themselves.
 */
#include "guest/rt/internal.h"

void *memcpy(void *dst, const void *src, size_t n)
{
	void *ret = dst;

	__asm__ __volatile__("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
	return ret;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	/* Overlapping, destination above: copy backwards. */
	unsigned char *d_last = d + n - 1;
	const unsigned char *s_last = s + n - 1;

	__asm__ __volatile__("std; rep movsb; cld"
			     : "+D"(d_last), "+S"(s_last), "+c"(n)
			     :
			     : "memory");
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	void *ret = dst;

	__asm__ __volatile__("rep stosb" : "+D"(dst), "+c"(n) : "a"(c) : "memory");
	return ret;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}

size_t strlen(const char *s)
{
	size_t len = 0;

	while (s[len])
		len++;
	return len;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

void *rt_alloc(size_t size, size_t align)
{
	uint64_t start, next, old = __atomic_load_n(&rt_state.heap_next, __ATOMIC_RELAXED);

	if (!align || (align & (align - 1)))
		rt_panic("rt_alloc: alignment %zu is not a power of two", align);
	do {
		start = (old + align - 1) & ~(uint64_t)(align - 1);
		next = start + size;
		if (next < start || next > rt_state.heap_end)
			rt_panic("rt_alloc: out of memory (%zu bytes wanted, %lu left)", size,
				 rt_state.heap_end - old);
	} while (!__atomic_compare_exchange_n(&rt_state.heap_next, &old, next, false,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return memset((void *)(uintptr_t)start, 0, size);
}

/* Heap sort: no recursion, no extra memory, O(n log n) whatever the input. */
static void sift_down(uint64_t *v, size_t root, size_t count)
{
	for (;;) {
		size_t child = 2 * root + 1;
		uint64_t tmp;

		if (child >= count)
			return;
		if (child + 1 < count && v[child + 1] > v[child])
			child++;
		if (v[root] >= v[child])
			return;
		tmp = v[root];
		v[root] = v[child];
		v[child] = tmp;
		root = child;
	}
}

void rt_sort_u64(uint64_t *values, size_t count)
{
	for (size_t i = count / 2; i-- > 0;)
		sift_down(values, i, count);
	for (size_t end = count; end-- > 1;) {
		uint64_t tmp = values[0];

		values[0] = values[end];
		values[end] = tmp;
		sift_down(values, 0, end);
	}
}

void rt_summarize(uint64_t *values, size_t count, struct rt_summary *out)
{
	uint64_t sum = 0;

	*out = (struct rt_summary){ 0 };
	if (!count)
		return;
	rt_sort_u64(values, count);
	for (size_t i = 0; i < count; i++)
		sum += values[i];
	out->min = values[0];
	out->median = values[count / 2];
	out->p99 = values[(count * 99) / 100 < count ? (count * 99) / 100 : count - 1];
	out->max = values[count - 1];
	out->mean = sum / count;
}
