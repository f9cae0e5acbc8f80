/*-------------------------------------------------------------------------
 *
 * sqlcommenter.c
 *		sqlcommenter tags at the end of a statement: finding the trailing
 *		comment and parsing its URL-encoded key='value' pairs into the scope
 *		key (the request id) and the label (route) of a request.
 *
 * The request id, in order of precedence: the trace id of traceparent
 * (version-traceid-spanid-flags; the span id changes per statement and is
 * ignored), else request_id, else the set of route, controller, action and
 * framework tags.  perfguard='ignore' suppresses the statement's findings;
 * perfguard='test' (or environment='test') marks test traffic, which the
 * reports leave out unless perfguard.include_test is on.  The framework tag
 * also says which vocabulary the fixes should speak (pfg_tag_framework).
 * Both functions are on the hot path (scope.c calls them only for a comment
 * that differs from the previous statement's), so they allocate nothing.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/sqlcommenter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "parser/scansup.h"

#include "sqlcommenter.h"

/*
 * pfg_trailing_comment
 *		Find the comment at the end of the statement src[loc, loc+len):
 *		sets *cstart / *clen to its content (between the delimiters).
 *		A statement without one costs a few comparisons.
 */
bool
pfg_trailing_comment(const char *src, int loc, int len,
					 const char **cstart, int *clen)
{
	const char *s = src + loc;
	int			end = len;
	const char *p;

	while (end > 0 && (scanner_isspace(s[end - 1]) || s[end - 1] == ';'))
		end--;
	if (end < 4 || s[end - 1] != '/' || s[end - 2] != '*')
		return false;

	/*
	 * The opening "/" + "*" nearest to the end: memrchr finds each slash
	 * with vector instructions (sqlcommenter values are URL-encoded, so the
	 * comment itself rarely holds one).
	 */
	p = s + end - 3;
	while ((p = memrchr(s, '/', p - s)) != NULL)
	{
		if (p[1] == '*' && p + 2 <= s + end - 2)
		{
			*cstart = p + 2;
			*clen = (int) ((s + end - 2) - (p + 2));
			return true;
		}
		if (p == s)
			break;
	}
	return false;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * url_decode
 *		Decode %XX escapes of s[0, n) into dst (size dstlen, always
 *		terminated); invalid escapes are kept as they are, and bytes that
 *		would not be valid UTF-8/server-encoding text are replaced by '?'.
 */
static void
url_decode(const char *s, int n, char *dst, int dstlen)
{
	int			i;
	int			o = 0;

	if (n < dstlen && memchr(s, '%', n) == NULL)
	{
		bool		plain = true;

		for (i = 0; i < n && plain; i++)
			plain = ((unsigned char) s[i] >= 0x20 && (unsigned char) s[i] < 0x80);
		if (plain)
		{
			memcpy(dst, s, n);
			dst[n] = '\0';
			return;
		}
	}

	for (i = 0; i < n && o < dstlen - 1; i++)
	{
		char		c = s[i];

		if (c == '%' && i + 2 < n &&
			hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)
		{
			c = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		if ((unsigned char) c < 0x20 && c != '\t')
			c = '?';
		dst[o++] = c;
	}
	dst[o] = '\0';
	/* never let invalid multibyte sequences out */
	if (pg_verifymbstr(dst, o, true) == false)
	{
		for (i = 0; i < o; i++)
			if ((unsigned char) dst[i] >= 0x80)
				dst[i] = '?';
	}
}

/*
 * copy_clipped
 *		strlcpy that never cuts a multibyte character in two (labels are
 *		shown in the views and must stay valid in the server encoding).
 */
static void
copy_clipped(char *dst, const char *src, int dstlen)
{
	int			n = strlen(src);

	if (n > dstlen - 1)
		n = pg_mbcliplen(src, n, dstlen - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/*
 * pfg_parse_tags
 *		Parse sqlcommenter tags "k='v',k2='v2'" (URL-encoded keys and values)
 *		from a comment.  Builds the scope key into "key": "t:<trace id>" for
 *		a traceparent, else "q:<request_id>" for a request_id tag (both name
 *		one request, whatever backend runs it: pfg_tags_key_is_id), else
 *		the route/controller/action/framework set; and
 *		the label (route, else controller#action) into "label" (empty when
 *		none).  *flags gets PFG_TAG_IGNORE for perfguard='ignore' and
 *		PFG_TAG_TEST for perfguard='test' or environment='test'.  Returns false when the
 *		comment carries none of the scope tags.  One function (about 150
 *		lines) on purpose: it runs for every new comment on the hot path, and
 *		keeps the scan, the key match and the value copies in one loop.
 */
bool
pfg_parse_tags(const char *comment, int clen, char *key, int keylen,
			   char *label, int labellen, int *flags)
{
	char		route[PFG_ROUTE_LEN];
	char		controller[PFG_ROUTE_LEN];
	char		action[PFG_ROUTE_LEN];
	char		framework[PFG_ROUTE_LEN];
	char		trace[64];
	char		reqid[128];
	int			p = 0;
	bool		any = false;

	route[0] = controller[0] = action[0] = framework[0] = trace[0] = reqid[0] = '\0';
	*flags = 0;
	key[0] = '\0';
	label[0] = '\0';

	while (p < clen)
	{
		int			ks,
					ke,
					vs,
					ve;
		char		k[64];
		char		v[256];

		while (p < clen && (scanner_isspace(comment[p]) || comment[p] == ','))
			p++;
		ks = p;
		while (p < clen && comment[p] != '=' && comment[p] != ',')
			p++;
		ke = p;
		if (p >= clen || comment[p] != '=')
			break;
		p++;
		if (p >= clen || comment[p] != '\'')
			break;
		p++;
		vs = p;
		while (p < clen && comment[p] != '\'')
			p++;
		ve = p;
		if (p >= clen)
			break;
		p++;

		/*
		 * Keys are compared as they are (decoded only if they hold a '%'),
		 * and only the values of the keys that matter are decoded.
		 */
		{
			const char *kp = comment + ks;
			int			klen = ke - ks;
			int			which;

			if (memchr(kp, '%', klen) != NULL)
			{
				url_decode(kp, klen, k, sizeof(k));
				kp = k;
				klen = strlen(k);
			}
#define KEY_IS(lit) (klen == (int) sizeof(lit) - 1 && memcmp(kp, lit, klen) == 0)
			if (KEY_IS("traceparent"))
				which = 0;
			else if (KEY_IS("route"))
				which = 1;
			else if (KEY_IS("controller"))
				which = 2;
			else if (KEY_IS("action"))
				which = 3;
			else if (KEY_IS("framework"))
				which = 4;
			else if (KEY_IS("perfguard"))
				which = 5;
			else if (KEY_IS("request_id"))
				which = 6;
			else if (KEY_IS("environment"))
				which = 7;
			else
				continue;
#undef KEY_IS
			url_decode(comment + vs, ve - vs, v, sizeof(v));
			switch (which)
			{
				case 0:
					{
						/* version-traceid-spanid-flags: the trace id names the request */
						char	   *d1 = strchr(v, '-');
						char	   *d2 = d1 ? strchr(d1 + 1, '-') : NULL;

						if (d1 && d2)
							*d2 = '\0';
						strlcpy(trace, d1 ? d1 + 1 : v, sizeof(trace));
						any = true;
						break;
					}
				case 1:
					copy_clipped(route, v, sizeof(route));
					any = true;
					break;
				case 2:
					copy_clipped(controller, v, sizeof(controller));
					any = true;
					break;
				case 3:
					copy_clipped(action, v, sizeof(action));
					any = true;
					break;
				case 4:
					copy_clipped(framework, v, sizeof(framework));
					any = true;
					break;
				case 6:
					strlcpy(reqid, v, sizeof(reqid));
					any = true;
					break;
				case 7:
					if (strcmp(v, "test") == 0)
						*flags |= PFG_TAG_TEST;
					break;
				default:
					if (strcmp(v, "ignore") == 0)
						*flags |= PFG_TAG_IGNORE;
					else if (strcmp(v, "test") == 0)
						*flags |= PFG_TAG_TEST;
					break;
			}
		}
	}

	if (!any)
		return false;

	if (trace[0])
	{
		/* the common case: no formatting, just a prefix and a copy */
		key[0] = 't';
		key[1] = ':';
		strlcpy(key + 2, trace, keylen - 2);
	}
	else if (reqid[0])
	{
		key[0] = 'q';
		key[1] = ':';
		strlcpy(key + 2, reqid, keylen - 2);
	}
	else
		snprintf(key, keylen, "r:%s|c:%s|a:%s|f:%s",
				 route, controller, action, framework);
	if (route[0])
		copy_clipped(label, route, labellen);
	else if (controller[0] || action[0])
	{
		char		ca[2 * PFG_ROUTE_LEN + 2];

		snprintf(ca, sizeof(ca), "%s#%s", controller, action);
		copy_clipped(label, ca, labellen);
	}
	return true;
}


/*
 * pfg_tag_framework
 *		The pfgFramework named by the "framework" tag of a comment: django
 *		(sqlcommenter's Django sends "django:3.2"), rails (also
 *		active_record/activerecord), flask or sqlalchemy; PFG_FW_NONE when
 *		absent or another one.  Called only for a comment that differs from
 *		the previous statement's; allocates nothing.
 */
int
pfg_tag_framework(const char *comment, int clen)
{
	const char *p = memmem(comment, clen, "framework='", 11);
	char		v[32];
	int			n = 0;

	if (p == NULL || (p > comment && p[-1] != ',' && !scanner_isspace(p[-1])))
		return PFG_FW_NONE;
	p += 11;
	while (p < comment + clen && *p != '\'' && n < (int) sizeof(v) - 1)
	{
		char		c = *p++;

		/* "%3A" (':'), "%2F", ...: the name ends there */
		if (c == '%' || c == ':' || c == '/' || c == ' ')
			break;
		v[n++] = pg_ascii_tolower((unsigned char) c);
	}
	v[n] = '\0';
	if (strncmp(v, "django", 6) == 0)
		return PFG_FW_DJANGO;
	if (strncmp(v, "rails", 5) == 0 || strncmp(v, "active_record", 13) == 0 ||
		strncmp(v, "activerecord", 12) == 0)
		return PFG_FW_RAILS;
	if (strncmp(v, "flask", 5) == 0 || strncmp(v, "sqlalchemy", 10) == 0)
		return PFG_FW_SQLALCHEMY;
	return PFG_FW_NONE;
}
