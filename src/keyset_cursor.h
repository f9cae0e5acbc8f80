/*-------------------------------------------------------------------------
 *
 * keyset_cursor.h
 *		Signed, opaque keyset-pagination cursors.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/keyset_cursor.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_KEYSET_CURSOR_H
#define PFG_KEYSET_CURSOR_H

#include "utils/jsonb.h"

#include "perfguard.h"

extern text *pfg_cursor_encode(Jsonb *jb);
extern Jsonb *pfg_cursor_decode(text *cursor);

#endif							/* PFG_KEYSET_CURSOR_H */
