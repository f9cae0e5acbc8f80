/*-------------------------------------------------------------------------
 *
 * index_evidence.h
 *		Index candidates proven at the end of a sampled execution, with the
 *		values it ran with.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/index_evidence.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_INDEX_EVIDENCE_H
#define PFG_INDEX_EVIDENCE_H

#include "executor/execdesc.h"

#include "perfguard.h"

extern void pfg_index_evidence(QueryDesc *queryDesc, const pfgStmtKey *key,
							   bool analyzed);

#endif							/* PFG_INDEX_EVIDENCE_H */
