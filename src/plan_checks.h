/*-------------------------------------------------------------------------
 *
 * plan_checks.h
 *		Pure walkers over an executed plan: the plan findings of one
 *		execution, and the names a finding shows.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/plan_checks.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef PFG_PLAN_CHECKS_H
#define PFG_PLAN_CHECKS_H

#include "nodes/execnodes.h"
#include "nodes/plannodes.h"

#include "perfguard.h"
#include "store_plans.h"

#define PFG_MAX_FOUND	16		/* findings kept from one plan walk */

typedef struct pfgWalk
{
	PlannedStmt *pstmt;
	bool		analyzed;		/* nodes carry instrumentation */
	bool		early_stop;		/* below a node that may stop its input early */
	bool		mis_seen;		/* a misestimate was reported in the subtree */
	int			nfound;
	pfgFound	found[PFG_MAX_FOUND];
} pfgWalk;


extern bool pfg_plan_walk(PlanState *ps, pfgWalk *w);
extern const char *pfg_plan_node_name(PlanState *ps);
extern Oid	pfg_plan_first_scan_relid(PlannedStmt *pstmt, Plan *plan,
									  Plan **scan);

#endif							/* PFG_PLAN_CHECKS_H */
