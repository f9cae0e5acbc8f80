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
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/scope_findings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/memutils.h"

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

/*---- flushing findings ----*/

/*
 * pfg_scope_flush_state
 *		Push what changed in a request since its last flush into the findings
 *		table, as deltas.  "example" is an example parameter set captured for
 *		fingerprint "example_qid" (or NULL).  Only copies: safe under the
 *		request's lock.
 */
void
pfg_scope_flush_state(pfgReqState *st, const char *example, uint64 example_qid)
{
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
			if (fp->seq_idx >= 0)
				d.seq_id = st->seqs[fp->seq_idx].id;
			pfg_store_record_finding(&key, st->label, &d, &fp->hint[0]);
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
		pfg_store_record_finding(&key, st->label, &d, NULL);
		sq->fl_occ = true;
		sq->fl_repeats = iters;
		sq->fl_wasted = wasted;
	}
	st->dirty = false;
}

