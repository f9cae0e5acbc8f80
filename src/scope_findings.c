/*-------------------------------------------------------------------------
 *
 * scope_findings.c
 *		What a request hands over: the findings its detectors fired, flushed
 *		to the store as deltas (pfg_scope_flush_state), and the findings a
 *		guard at 'collect' keeps for the one failure at the end of a test
 *		(pfg_collect_*, perfguard.collected(), perfguard.check_collected()).
 *
 * Flushing only copies into the store's findings table: it runs under the
 * lock of a shared request.  Collected findings live in backend-local
 * memory (at most PFG_MAX_COLLECTED), only when a guard is at 'collect'.
 *
 * The fix of a new N+1 or sequence finding is derived once, by a backend of
 * its database (issue 17): the store says when a finding has no fix yet,
 * the flush queues it here (a copy, under the lock is fine), and scope.c
 * drains the queue with the registered fix function where a subtransaction
 * may start (pfg_scope_drain_fixes).
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/scope_findings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "fingerprint.h"
#include "scope_findings.h"
#include "store.h"
#include "store_requests.h"

/*---- collected findings (guards at 'collect') ----*/

#define PFG_MAX_COLLECTED	100

static pfgCollected collected[PFG_MAX_COLLECTED];
static int	ncollected = 0;
static int	collected_lost = 0;

static char *
collect_strdup(const char *s)
{
	return s ? MemoryContextStrdup(TopMemoryContext, s) : NULL;
}

/*
 * pfg_collect_add
 *		A guard at 'collect' fired: keep the finding (its statement, parent
 *		and fix, derived once) for perfguard.check_collected().  kind 0 is
 *		"too many queries".
 */
void
pfg_collect_add(int kind, uint64 queryid, const char *label, int64 count,
			int32 distinct, const char *query, const char *parent,
			const char *fix)
{
	pfgCollected *c;

	if (ncollected >= PFG_MAX_COLLECTED)
	{
		collected_lost++;
		return;
	}
	c = &collected[ncollected++];
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->queryid = queryid;
	strlcpy(c->label, label, sizeof(c->label));
	c->count = count;
	c->distinct = distinct;
	c->query = collect_strdup(query);
	c->parent = collect_strdup(parent);
	c->fix = collect_strdup(fix);
}

/*
 * pfg_collect_update
 *		A collected finding grew (the loop went on): keep its latest count.
 */
void
pfg_collect_update(int kind, uint64 queryid, const char *label, int64 count,
			   int32 distinct)
{
	int			i;

	for (i = ncollected - 1; i >= 0; i--)
	{
		pfgCollected *c = &collected[i];

		if (c->kind == kind && c->queryid == queryid &&
			strcmp(c->label, label) == 0)
		{
			c->count = Max(c->count, count);
			c->distinct = Max(c->distinct, distinct);
			return;
		}
	}
}

/*
 * pfg_scope_collected
 *		The findings collected so far in this session (*lost: how many did not
 *		fit), oldest first.
 */
int
pfg_scope_collected(const pfgCollected **out, int *lost)
{
	*out = collected;
	*lost = collected_lost;
	return ncollected;
}

/*
 * pfg_scope_clear_collected
 *		Forget the collected findings.
 */
void
pfg_scope_clear_collected(void)
{
	int			i;

	for (i = 0; i < ncollected; i++)
	{
		if (collected[i].query)
			pfree(collected[i].query);
		if (collected[i].parent)
			pfree(collected[i].parent);
		if (collected[i].fix)
			pfree(collected[i].fix);
	}
	ncollected = 0;
	collected_lost = 0;
}

/*
 * pfg_scope_check_collected
 *		Fail once, listing every collected finding with its statement, count,
 *		parent and fix (then forget them); nothing when there is none.
 */
void
pfg_scope_check_collected(void)
{
	StringInfoData detail;
	int			i;
	int			n = ncollected;
	int			lost = collected_lost;

	if (n == 0 && lost == 0)
		return;
	initStringInfo(&detail);
	for (i = 0; i < n; i++)
	{
		pfgCollected *c = &collected[i];

		if (i > 0)
			appendStringInfoChar(&detail, '\n');
		if (c->kind == PFG_FIND_NPLUSONE)
			appendStringInfo(&detail, "%d. N+1 query in request \"%s\": ran %lld times with %d different parameter sets: %s%s%s%s%s",
							 i + 1, c->label, (long long) c->count, c->distinct,
							 c->query ? c->query : "(unavailable)",
							 c->parent ? "\n   parent: " : "", c->parent ? c->parent : "",
							 c->fix ? "\n   fix: " : "", c->fix ? c->fix : "");
		else if (c->kind == PFG_FIND_DUPLICATE)
			appendStringInfo(&detail, "%d. duplicate query in request \"%s\": the same parameters ran %lld times: %s\n   fix: run it once and reuse the result",
							 i + 1, c->label, (long long) c->count,
							 c->query ? c->query : "(unavailable)");
		else
			appendStringInfo(&detail, "%d. request \"%s\" ran %lld queries, more than perfguard.max_queries_per_request (%d)",
							 i + 1, c->label, (long long) c->count,
							 pfg_max_queries_per_request);
	}
	if (lost > 0)
		appendStringInfo(&detail, "\n(and %d more)", lost);
	pfg_scope_clear_collected();
	ereport(ERROR,
			(errcode(ERRCODE_PFG_COLLECTED),
			 errmsg("perfguard: %d finding%s", n + lost, n + lost == 1 ? "" : "s"),
			 errdetail("%s", detail.data),
			 errhint("Fix each one (the fix is given), or suppress it with perfguard.ignore().")));
}

/*---- fixes to derive ----*/

#define PFG_MAX_PENDING_FIXES	16

typedef struct pendingFix
{
	pfgFindingKey key;
	int			framework;
	int			nq;
	uint64		queries[PFG_SEQ_MAX];
} pendingFix;

static pendingFix pending_fixes[PFG_MAX_PENDING_FIXES];
int			pfg_pending_fixes = 0;

/*
 * fix_queue
 *		Remember a finding whose fix this backend claimed.  Only findings of
 *		this backend's database (another backend may end a request of another
 *		database by its idle gap; that database's catalog is not readable
 *		here).  A full queue drops it; the report then derives the fix when
 *		it runs in the finding's database.  Plain copies: safe under a lock.
 */
static void
fix_queue(const pfgFindingKey *key, int framework, int nq,
		  const uint64 *queries)
{
	pendingFix *pf;

	if (key->dbid != MyDatabaseId || pfg_pending_fixes >= PFG_MAX_PENDING_FIXES)
		return;
	pf = &pending_fixes[pfg_pending_fixes++];
	pf->key = *key;
	pf->framework = framework;
	pf->nq = Min(nq, PFG_SEQ_MAX);
	memcpy(pf->queries, queries, sizeof(uint64) * pf->nq);
}

/*
 * pfg_scope_drain_fixes
 *		Derive (with "fn", which perfguard.c registers with the scope) and
 *		store the fixes of the queued findings.  The callers are executor
 *		paths, never transaction control: "fn" starts a subtransaction, which
 *		BeginInternalSubTransaction refuses (FATAL) in the middle of BEGIN,
 *		SAVEPOINT or ROLLBACK; here only inside a healthy transaction, outside
 *		parallel mode.  Each entry leaves the queue before its fix is
 *		derived, so a failure (a query cancel, re-thrown) never repeats.
 *		Once per new finding, never per statement.
 */
void
pfg_scope_drain_fixes(pfg_fix_fn fn)
{
	MemoryContext cxt;
	MemoryContext old;

	if (fn == NULL || !IsTransactionState() ||
		IsAbortedTransactionBlockState() || IsInParallelMode() ||
		!pfg_store_ready())
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "perfguard fixes",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	while (pfg_pending_fixes > 0)
	{
		pendingFix	pf = pending_fixes[--pfg_pending_fixes];
		const char *texts[PFG_SEQ_MAX];
		char	   *parent;
		pfgFix	   *fix = palloc0(sizeof(pfgFix));
		int			i;

		parent = pfg_store_get_query_any(pf.key.userid, pf.key.dbid,
										 pf.key.parent_queryid);
		for (i = 0; i < pf.nq; i++)
			texts[i] = pfg_store_get_query_any(pf.key.userid, pf.key.dbid,
											   pf.queries[i]);
		(void) fn(parent, texts, pf.nq, pf.framework, fix);
		pfg_store_set_finding_fix(&pf.key, fix);
		MemoryContextReset(cxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/*---- example parameters ----*/

/* An example parameter set captured for the next flush of its fingerprint. */
static char *pending_example = NULL;
static uint64 pending_example_qid = 0;

/*
 * pfg_scope_capture_example
 *		Keep one example parameter set for a finding (capture_parameters),
 *		until the flush at the end of this statement.  Output functions may
 *		fail: such a failure only loses the example.
 */
void
pfg_scope_capture_example(uint64 queryid, const char *src, int loc, int len,
						  ParamListInfo params)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	char	   *volatile example = NULL;

	PG_TRY();
	{
		example = pfg_format_params(src, loc, len, params);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(TopMemoryContext);
		FlushErrorState();
		example = NULL;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (pending_example)
		pfree(pending_example);
	pending_example = example;
	pending_example_qid = queryid;
}

/*
 * pfg_scope_forget_example
 *		The example parameter set went to the findings (or is no longer
 *		wanted).
 */
void
pfg_scope_forget_example(void)
{
	if (pending_example)
		pfree(pending_example);
	pending_example = NULL;
	pending_example_qid = 0;
}

/*---- flushing findings ----*/

/*
 * pfg_scope_flush_state
 *		Push what changed in a request since its last flush into the findings
 *		table, as deltas, "with_example": with the example parameter set this
 *		backend captured for one of its fingerprints, if any.  Only copies:
 *		safe under the request's lock.
 */
void
pfg_scope_flush_state(pfgReqState *st, bool with_example)
{
	const char *example = with_example ? pending_example : NULL;
	uint64		example_qid = pending_example_qid;
	pfgReqFp   *fps = pfg_req_fps(st);
	pfgFindingKey key;
	int			i;

	if (!st->dirty || !pfg_store_ready())
	{
		st->dirty = false;
		return;
	}
	for (i = 0; i < st->nfps; i++)
	{
		pfgReqFp   *fp = &fps[i];
		pfgFindingDelta d;
		double		mean;
		const char *ex = (example && example_qid == fp->queryid) ? example : NULL;

		if (!fp->dirty)
			continue;
		fp->dirty = false;
		if (fp->self)
			continue;			/* perfguard's own report statement */
		mean = fp->repeats > 0 ? fp->total_ms / fp->repeats : 0;

		memset(&key, 0, sizeof(key));
		key.dbid = st->dbid;
		key.userid = st->userid;
		key.route_hash = st->route_hash;
		key.queryid = fp->queryid;
		/* rules are applied at report time; only in-band is recorded */
		key.ignored = (fp->inband_ignored ? PFG_FINDING_IGNORED : 0) |
			(st->test ? PFG_FINDING_TEST : 0);

		if (fp->np_fired)
		{
			double		wasted = fp->total_ms - fp->first_ms;

			key.kind = PFG_FIND_NPLUSONE;
			key.parent_queryid = fp->parent_queryid;
			memset(&d, 0, sizeof(d));
			d.new_occurrence = !fp->fl_np;
			d.repeats = fp->repeats - fp->fl_np_repeats;
			d.scope_repeats = fp->repeats;
			d.scope_distinct = fp->distinct;
			d.scope_max_same = fp->max_same;
			d.duplicates = 0;
			d.wasted_ms = wasted - fp->fl_np_wasted;
			d.scope_total = fp->repeats;
			d.scope_wasted_ms = wasted;
			d.cmdtype = fp->cmd;
			d.example_params = ex;
			d.framework = st->framework;
			if (fp->seq_idx >= 0)
				d.seq_id = st->seqs[fp->seq_idx].id;
			if (pfg_store_record_finding(&key, st->label, &d, &fp->hint[0]))
				fix_queue(&key, st->framework, 1, &fp->queryid);
			fp->fl_np = true;
			fp->fl_np_repeats = fp->repeats;
			fp->fl_np_wasted = wasted;
		}
		if (fp->dup_fired)
		{
			double		wasted = fp->dup_execs * mean;

			key.kind = PFG_FIND_DUPLICATE;
			key.parent_queryid = 0;
			memset(&d, 0, sizeof(d));
			d.new_occurrence = !fp->fl_dup;
			d.scope_repeats = fp->repeats;
			d.scope_distinct = fp->distinct;
			d.duplicates = fp->dup_execs - fp->fl_dup_execs;
			d.scope_max_same = fp->max_same;
			d.wasted_ms = wasted - fp->fl_dup_wasted;
			d.scope_total = fp->dup_execs;
			d.scope_wasted_ms = wasted;
			d.cmdtype = fp->cmd;
			d.example_params = ex;
			d.framework = st->framework;
			pfg_store_record_finding(&key, st->label, &d, &fp->hint[1]);
			fp->fl_dup = true;
			fp->fl_dup_execs = fp->dup_execs;
			fp->fl_dup_wasted = wasted;
		}
		if (fp->wl_fired)
		{
			double		wasted = fp->total_ms - fp->first_ms;

			key.kind = PFG_FIND_WRITELOOP;
			key.parent_queryid = 0;
			memset(&d, 0, sizeof(d));
			d.new_occurrence = !fp->fl_wl;
			d.repeats = fp->repeats - fp->fl_wl_repeats;
			d.scope_repeats = fp->repeats;
			d.scope_distinct = fp->distinct;
			d.wasted_ms = wasted - fp->fl_wl_wasted;
			d.scope_total = fp->repeats;
			d.scope_wasted_ms = wasted;
			d.cmdtype = fp->cmd;
			d.example_params = ex;
			d.framework = st->framework;
			pfg_store_record_finding(&key, st->label, &d, &fp->hint[2]);
			fp->fl_wl = true;
			fp->fl_wl_repeats = fp->repeats;
			fp->fl_wl_wasted = wasted;
		}
	}

	/*
	 * The request's repeating sequences: one finding each, keyed by the
	 * sequence, with its members; iterations = the least repeated member's
	 * count.
	 */
	for (i = 0; i < st->nseqs; i++)
	{
		pfgReqSeq  *sq = &st->seqs[i];
		pfgFindingDelta d;
		uint64		members[PFG_SEQ_MAX];
		int32		iters = INT32_MAX;
		double		wasted = 0;
		bool		ignored = false;
		int			k;

		for (k = 0; k < sq->n; k++)
		{
			pfgReqFp   *m = &fps[sq->fpidx[k]];

			members[k] = m->queryid;
			iters = Min(iters, m->repeats);
			wasted += m->total_ms - m->first_ms;
			ignored |= m->inband_ignored;
		}
		if (sq->fl_occ && iters == sq->fl_repeats)
			continue;
		memset(&key, 0, sizeof(key));
		key.kind = PFG_FIND_SEQUENCE;
		key.ignored = (ignored ? PFG_FINDING_IGNORED : 0) |
			(st->test ? PFG_FINDING_TEST : 0);
		key.dbid = st->dbid;
		key.userid = st->userid;
		key.route_hash = st->route_hash;
		key.queryid = sq->id;
		key.parent_queryid = fps[sq->fpidx[0]].parent_queryid;
		memset(&d, 0, sizeof(d));
		d.new_occurrence = !sq->fl_occ;
		d.repeats = iters - sq->fl_repeats;
		d.scope_repeats = iters;
		d.wasted_ms = wasted - sq->fl_wasted;
		d.cmdtype = CMD_SELECT;
		d.nseq = sq->n;
		d.seq = members;
		d.framework = st->framework;
		if (pfg_store_record_finding(&key, st->label, &d, NULL))
			fix_queue(&key, st->framework, sq->n, members);
		sq->fl_occ = true;
		sq->fl_repeats = iters;
		sq->fl_wasted = wasted;
	}
	st->dirty = false;
}

