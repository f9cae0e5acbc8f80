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
extern bool pfg_parse_tags(const char *comment, int clen,
						   char *key, int keylen, char *label, int labellen,
						   bool *ignore);
extern int	pfg_tag_framework(const char *comment, int clen);

#endif							/* PFG_SQLCOMMENTER_H */
