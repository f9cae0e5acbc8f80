/*-------------------------------------------------------------------------
 *
 * keyset_cursor.c
 *		Opaque, URL-safe cursors for keyset pagination, signed with HMAC
 *		when perfguard.cursor_secret is set.
 *
 * A cursor is base64url (no padding) of
 *		version byte (1) | flags byte | payload (jsonb text) [| HMAC]
 * where flag 0x01 means the cursor carries an HMAC-SHA256 of everything
 * before it, keyed with perfguard.cursor_secret.  When the secret is set,
 * only cursors signed with it are accepted; MACs are compared in constant
 * time.  Every malformed, truncated, foreign or tampered cursor is an ERROR
 * with ERRCODE_INVALID_PARAMETER_VALUE.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/keyset_cursor.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hmac.h"
#include "common/jsonapi.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "keyset_cursor.h"

PG_FUNCTION_INFO_V1(perfguard_cursor_encode);
PG_FUNCTION_INFO_V1(perfguard_cursor_decode);

#define CURSOR_VERSION			1
#define CURSOR_FLAG_SIGNED		0x01
#define CURSOR_MAC_LEN			PG_SHA256_DIGEST_LENGTH
/* longest cursor accepted by cursor_decode, in characters */
#define CURSOR_MAX_LEN			65536

static void cursor_bad(const char *detail) pg_attribute_noreturn();

static bool
cursor_secret_set(void)
{
	return pfg_cursor_secret != NULL && pfg_cursor_secret[0] != '\0';
}

/* HMAC-SHA256 of data keyed with perfguard.cursor_secret. */
static void
cursor_hmac(const uint8 *data, size_t len, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) pfg_cursor_secret,
					 strlen(pfg_cursor_secret)) < 0 ||
		pg_hmac_update(ctx, data, len) < 0 ||
		pg_hmac_final(ctx, mac, CURSOR_MAC_LEN) < 0)
	{
		const char *err = pstrdup(pg_hmac_error(ctx));

		pg_hmac_free(ctx);
		elog(ERROR, "could not compute cursor signature: %s", err);
	}
	pg_hmac_free(ctx);
}

static const char cursor_b64chars[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; returns a palloc'd NUL-terminated string. */
static char *
cursor_b64url_encode(const uint8 *data, size_t len)
{
	char	   *dst = palloc((len + 2) / 3 * 4 + 1);
	char	   *p = dst;
	size_t		i;

	for (i = 0; i + 2 < len; i += 3)
	{
		uint32		v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];

		*p++ = cursor_b64chars[(v >> 18) & 0x3F];
		*p++ = cursor_b64chars[(v >> 12) & 0x3F];
		*p++ = cursor_b64chars[(v >> 6) & 0x3F];
		*p++ = cursor_b64chars[v & 0x3F];
	}
	if (len - i == 1)
	{
		uint32		v = data[i] << 16;

		*p++ = cursor_b64chars[(v >> 18) & 0x3F];
		*p++ = cursor_b64chars[(v >> 12) & 0x3F];
	}
	else if (len - i == 2)
	{
		uint32		v = (data[i] << 16) | (data[i + 1] << 8);

		*p++ = cursor_b64chars[(v >> 18) & 0x3F];
		*p++ = cursor_b64chars[(v >> 12) & 0x3F];
		*p++ = cursor_b64chars[(v >> 6) & 0x3F];
	}
	*p = '\0';
	return dst;
}

static inline int
cursor_b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Decode base64url without padding.  Returns NULL if src has a character
 * outside the alphabet, an impossible length, or non-zero trailing bits
 * (so that every byte string has exactly one encoding).
 */
static uint8 *
cursor_b64url_decode(const char *src, size_t srclen, size_t *dstlen)
{
	uint8	   *dst;
	size_t		n = 0;
	uint32		acc = 0;
	int			bits = 0;
	size_t		i;

	if (srclen % 4 == 1)
		return NULL;
	dst = palloc(srclen * 3 / 4 + 1);
	for (i = 0; i < srclen; i++)
	{
		int			v = cursor_b64url_value(src[i]);

		if (v < 0)
			return NULL;
		acc = (acc << 6) | v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			dst[n++] = (acc >> bits) & 0xFF;
		}
	}
	if ((acc & ((1 << bits) - 1)) != 0)
		return NULL;
	*dstlen = n;
	return dst;
}

/*
 * Encode a jsonb value as a cursor, signed when perfguard.cursor_secret is
 * set.
 */
text *
pfg_cursor_encode(Jsonb *jb)
{
	char	   *payload = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
	size_t		plen = strlen(payload);
	bool		sign = cursor_secret_set();
	size_t		len = 2 + plen + (sign ? CURSOR_MAC_LEN : 0);
	uint8	   *buf = palloc(len);

	buf[0] = CURSOR_VERSION;
	buf[1] = sign ? CURSOR_FLAG_SIGNED : 0;
	memcpy(buf + 2, payload, plen);
	if (sign)
		cursor_hmac(buf, 2 + plen, buf + 2 + plen);
	return cstring_to_text(cursor_b64url_encode(buf, len));
}

static void
cursor_bad(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid cursor"),
			 errdetail("%s", detail),
			 errhint("Pass the next_cursor value returned by keyset_page or cursor_encode unchanged.")));
}

/*
 * Decode and verify a cursor.  Every malformed, truncated, foreign or
 * tampered cursor is an ERROR with ERRCODE_INVALID_PARAMETER_VALUE.
 */
Jsonb *
pfg_cursor_decode(text *cursor)
{
	char	   *src = VARDATA_ANY(cursor);
	size_t		srclen = VARSIZE_ANY_EXHDR(cursor);
	uint8	   *buf;
	size_t		len;
	size_t		plen;
	char	   *payload;
	JsonLexContext *lex;
	JsonParseErrorType jerr;

	if (srclen > CURSOR_MAX_LEN)
		cursor_bad("The cursor is too long.");
	buf = cursor_b64url_decode(src, srclen, &len);
	if (buf == NULL)
		cursor_bad("The cursor is not valid base64url.");
	if (len < 2)
		cursor_bad("The cursor is truncated.");
	if (buf[0] != CURSOR_VERSION)
		cursor_bad(psprintf("Unknown cursor format version %d.", buf[0]));
	if ((buf[1] & ~CURSOR_FLAG_SIGNED) != 0)
		cursor_bad("Unknown cursor flags.");

	if (buf[1] & CURSOR_FLAG_SIGNED)
	{
		uint8		mac[CURSOR_MAC_LEN];
		uint8		diff = 0;
		int			i;

		if (len < 2 + CURSOR_MAC_LEN)
			cursor_bad("The cursor is truncated.");
		if (!cursor_secret_set())
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid cursor"),
					 errdetail("The cursor is signed, but perfguard.cursor_secret is not set, so it cannot be verified."),
					 errhint("Set perfguard.cursor_secret to the secret that signed the cursor.")));
		len -= CURSOR_MAC_LEN;
		cursor_hmac(buf, len, mac);
		/* constant time: no early exit on the first differing byte */
		for (i = 0; i < CURSOR_MAC_LEN; i++)
			diff |= mac[i] ^ buf[len + i];
		if (diff != 0)
			cursor_bad("The cursor signature does not match: the cursor was altered, truncated, or signed with another secret.");
	}
	else if (cursor_secret_set())
		cursor_bad("The cursor is not signed, and perfguard.cursor_secret requires signed cursors.");

	plen = len - 2;
	payload = palloc(plen + 1);
	memcpy(payload, buf + 2, plen);
	payload[plen] = '\0';
	if (memchr(payload, '\0', plen) != NULL ||
		!pg_verifymbstr(payload, plen, true))
		cursor_bad("The cursor payload is not valid text.");
	lex = makeJsonLexContextCstringLen(payload, plen, GetDatabaseEncoding(), true);
	jerr = pg_parse_json(lex, &nullSemAction);
	if (jerr != JSON_SUCCESS)
		cursor_bad("The cursor payload is not valid JSON.");

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(payload)));
}

/*
 * perfguard.cursor_encode(jsonb) RETURNS text.  STRICT.
 */
Datum
perfguard_cursor_encode(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(pfg_cursor_encode(PG_GETARG_JSONB_P(0)));
}

/*
 * perfguard.cursor_decode(text) RETURNS jsonb.  STRICT.
 */
Datum
perfguard_cursor_decode(PG_FUNCTION_ARGS)
{
	PG_RETURN_JSONB_P(pfg_cursor_decode(PG_GETARG_TEXT_PP(0)));
}

