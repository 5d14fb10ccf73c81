/*
 * XDR (RFC 4506) as libvirt's remote protocol uses it: big-endian 4- and 8-byte integers,
 * everything padded to 4 bytes, variable-length data behind a 4-byte length.
 *
 * The reader never trusts a length: each getter checks it against the bytes left in the packet
 * before touching memory, and a declared length past its bound is malformed even when the
 * bytes are there.  The writer grows a buffer up to a cap and records failure instead of
 * returning it, so reply builders stay linear.  Used by api/virt_*.c and the fuzzers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/virt.h"

static size_t padded(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

void api_xdr_in_init(struct api_xdr_in *in, const void *buf, size_t len)
{
	*in = (struct api_xdr_in){ .p = buf, .len = len };
}

/* Claims n bytes (plus padding) of the packet, or marks the reader bad. */
static const uint8_t *take(struct api_xdr_in *in, size_t n)
{
	size_t need = padded(n);
	const uint8_t *p;

	if (in->bad || need < n || need > in->len - in->pos) {
		in->bad = true;
		return NULL;
	}
	p = in->p + in->pos;
	in->pos += need;
	return p;
}

int api_xdr_get_u32(struct api_xdr_in *in, uint32_t *out)
{
	const uint8_t *p = take(in, 4);

	if (!p)
		return -EBADMSG;
	*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return 0;
}

int api_xdr_get_i32(struct api_xdr_in *in, int32_t *out)
{
	uint32_t u;
	int ret = api_xdr_get_u32(in, &u);

	if (!ret)
		*out = (int32_t)u;
	return ret;
}

int api_xdr_get_u64(struct api_xdr_in *in, uint64_t *out)
{
	uint32_t hi, lo;

	if (api_xdr_get_u32(in, &hi) || api_xdr_get_u32(in, &lo))
		return -EBADMSG;
	*out = (uint64_t)hi << 32 | lo;
	return 0;
}

int api_xdr_get_fixed(struct api_xdr_in *in, void *out, size_t n)
{
	const uint8_t *p = take(in, n);

	if (!p)
		return -EBADMSG;
	memcpy(out, p, n);
	return 0;
}

int api_xdr_get_var(struct api_xdr_in *in, size_t max, const uint8_t **data, uint32_t *len)
{
	const uint8_t *p;
	uint32_t n;

	if (api_xdr_get_u32(in, &n))
		return -EBADMSG;
	if (n > max) {
		in->bad = true;
		return -EBADMSG;
	}
	p = take(in, n);
	if (!p)
		return -EBADMSG;
	*data = p;
	*len = n;
	return 0;
}

int api_xdr_get_string(struct api_xdr_in *in, size_t max, char **out)
{
	const uint8_t *p;
	uint32_t n;
	char *s;

	if (api_xdr_get_var(in, max, &p, &n))
		return -EBADMSG;
	if (memchr(p, '\0', n)) {
		in->bad = true;
		return -EBADMSG;
	}
	s = malloc((size_t)n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, p, n);
	s[n] = '\0';
	*out = s;
	return 0;
}

bool api_xdr_finished(const struct api_xdr_in *in)
{
	return !in->bad && in->pos == in->len;
}

/* ---- writer ---- */

void api_xdr_out_init(struct api_xdr_out *out, size_t max)
{
	*out = (struct api_xdr_out){ .max = max };
}

void api_xdr_out_fini(struct api_xdr_out *out)
{
	free(out->buf);
	*out = (struct api_xdr_out){ .max = out->max };
}

/* Room for n more bytes (zeroed, so padding needs no extra work), or NULL after a failure. */
static uint8_t *room(struct api_xdr_out *out, size_t n)
{
	uint8_t *p;

	if (out->failed)
		return NULL;
	if (n > out->max || out->len > out->max - n) {
		out->failed = true;
		return NULL;
	}
	if (out->len + n > out->cap) {
		size_t cap = out->cap ? out->cap : 256;

		while (cap < out->len + n)
			cap *= 2;
		p = realloc(out->buf, cap);
		if (!p) {
			out->failed = true;
			return NULL;
		}
		out->buf = p;
		out->cap = cap;
	}
	p = out->buf + out->len;
	memset(p, 0, n);
	out->len += n;
	return p;
}

void api_xdr_put_u32(struct api_xdr_out *out, uint32_t v)
{
	uint8_t *p = room(out, 4);

	if (!p)
		return;
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void api_xdr_put_i32(struct api_xdr_out *out, int32_t v)
{
	api_xdr_put_u32(out, (uint32_t)v);
}

void api_xdr_put_u64(struct api_xdr_out *out, uint64_t v)
{
	api_xdr_put_u32(out, (uint32_t)(v >> 32));
	api_xdr_put_u32(out, (uint32_t)v);
}

void api_xdr_put_fixed(struct api_xdr_out *out, const void *data, size_t n)
{
	uint8_t *p = room(out, padded(n));

	if (p && n)
		memcpy(p, data, n);
}

void api_xdr_put_var(struct api_xdr_out *out, const void *data, size_t n)
{
	if (n > UINT32_MAX) {
		out->failed = true;
		return;
	}
	api_xdr_put_u32(out, (uint32_t)n);
	api_xdr_put_fixed(out, data, n);
}

void api_xdr_put_string(struct api_xdr_out *out, const char *s)
{
	api_xdr_put_var(out, s, strlen(s));
}

void api_xdr_put_chars(struct api_xdr_out *out, const char *s, size_t n, bool fixed)
{
	size_t len = strlen(s) + 1;

	if (len > n) {
		out->failed = true;
		return;
	}
	if (!fixed)
		api_xdr_put_u32(out, (uint32_t)len);
	for (size_t i = 0; i < (fixed ? n : len); i++)
		api_xdr_put_i32(out, i < len ? (unsigned char)s[i] : 0);
}

void api_xdr_put_domain(struct api_xdr_out *out, const char *name, const uint8_t uuid[16],
			int32_t id)
{
	api_xdr_put_string(out, name);
	api_xdr_put_fixed(out, uuid, VIRT_UUID_LEN);
	api_xdr_put_i32(out, id);
}

/* ---- UUIDs ---- */

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int api_virt_uuid_parse(const char *text, uint8_t out[16])
{
	size_t len = strlen(text);
	bool dashed = len == 36;
	const char *p = text;

	if (len != 36 && len != 32)
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		int hi, lo;

		if (dashed && (i == 4 || i == 6 || i == 8 || i == 10) && *p++ != '-')
			return -EINVAL;
		hi = hex_value(p[0]);
		lo = hex_value(p[1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	return 0;
}

void api_virt_uuid_format(const uint8_t u[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[u[i] >> 4];
		*p++ = hex[u[i] & 15];
	}
	*p = '\0';
}
