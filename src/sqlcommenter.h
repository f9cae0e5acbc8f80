/*-------------------------------------------------------------------------
 *
 * sqlcommenter.h
 *		Trailing sqlcommenter comments and their tags.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/sqlcommenter.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_SQLCOMMENTER_H
#define PFG_SQLCOMMENTER_H

#include "perfguard.h"

extern bool pfg_trailing_comment(const char *src, int loc, int len,
								 const char **cstart, int *clen);
/* Flags of a comment (pfg_parse_tags) */
#define PFG_TAG_IGNORE		0x01	/* perfguard='ignore' */
#define PFG_TAG_TEST		0x02	/* perfguard='test', environment='test' */

extern bool pfg_parse_tags(const char *comment, int clen,
						   char *key, int keylen, char *label, int labellen,
						   int *flags);
extern int	pfg_tag_framework(const char *comment, int clen);

/* Does a scope key from pfg_parse_tags name one request (a request id)? */
static inline bool
pfg_tags_key_is_id(const char *key)
{
	return (key[0] == 't' || key[0] == 'q') && key[1] == ':';
}

#endif							/* PFG_SQLCOMMENTER_H */
