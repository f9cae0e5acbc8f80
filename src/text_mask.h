/*-------------------------------------------------------------------------
 *
 * text_mask.h
 *		Literal masking of free text that may carry parameter values: plan
 *		text (EXPLAIN output) and error messages.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/text_mask.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_TEXT_MASK_H
#define PFG_TEXT_MASK_H

#include "perfguard.h"

extern char *pfg_mask_plan_text(const char *plan);
extern const char *pfg_mask_error_message(const char *msg, char *out,
										  int outsize);

#endif							/* PFG_TEXT_MASK_H */
