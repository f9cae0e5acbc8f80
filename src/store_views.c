/*-------------------------------------------------------------------------
 *
 * store_views.c
 *		The set-returning functions behind perfguard's views of the store
 *		(statements, history, errors, findings, requests, info, slow queries,
 *		plan findings, offsets), the suppression rules, reset, and the
 *		explicit request API.  The index advice and keyset functions build
 *		their own rows (index_advice.c, keyset.c); the fix of an N+1 is
 *		nplusone_fix.c's.
 *
 * Privileges: counters are visible to everyone; query text, example
 * parameters and plans only to those report.c's rule lets see them.  Every
 * function copies entries out of shared memory first (the store's foreach
 * and copy functions), then builds tuples with no lock held.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/store_views.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "report.h"
#include "scope.h"
#include "scope_findings.h"
#include "store.h"
#include "store_plans.h"

PG_FUNCTION_INFO_V1(perfguard_statements);
PG_FUNCTION_INFO_V1(perfguard_statements_history);
PG_FUNCTION_INFO_V1(perfguard_errors);
PG_FUNCTION_INFO_V1(perfguard_ignore);
PG_FUNCTION_INFO_V1(perfguard_unignore);
PG_FUNCTION_INFO_V1(perfguard_ignore_route);
PG_FUNCTION_INFO_V1(perfguard_unignore_route);
PG_FUNCTION_INFO_V1(perfguard_ignore_rules);
PG_FUNCTION_INFO_V1(perfguard_findings_raw);
PG_FUNCTION_INFO_V1(perfguard_requests);
PG_FUNCTION_INFO_V1(perfguard_info);
PG_FUNCTION_INFO_V1(perfguard_reset);
PG_FUNCTION_INFO_V1(perfguard_begin_request);
PG_FUNCTION_INFO_V1(perfguard_end_request);
PG_FUNCTION_INFO_V1(perfguard_collected);
PG_FUNCTION_INFO_V1(perfguard_check_collected);
PG_FUNCTION_INFO_V1(perfguard_slow_queries);
PG_FUNCTION_INFO_V1(perfguard_plan_findings);
PG_FUNCTION_INFO_V1(perfguard_offsets);

static const char *
cmd_name(CmdType cmd)
{
	switch (cmd)
	{
		case CMD_SELECT:
			return "SELECT";
		case CMD_INSERT:
			return "INSERT";
		case CMD_UPDATE:
			return "UPDATE";
		case CMD_DELETE:
			return "DELETE";
		case CMD_MERGE:
			return "MERGE";
		case CMD_UTILITY:
			return "UTILITY";
		default:
			return "OTHER";
	}
}

/* Collected copies of entries, built while the partition locks are held. */
typedef struct pfgCollect
{
	char	   *data;
	Size		entrysize;
	int			n;
	int			alloc;
} pfgCollect;

static void
collect_cb(const void *entry, void *arg)
{
	pfgCollect *c = (pfgCollect *) arg;

	if (c->n == c->alloc)
	{
		c->alloc = c->alloc ? c->alloc * 2 : 64;
		c->data = c->data ? repalloc_huge(c->data, c->entrysize * c->alloc) :
			palloc(c->entrysize * c->alloc);
	}
	memcpy(c->data + c->entrysize * c->n, entry, c->entrysize);
	c->n++;
}

/*
 * hist_percentile
 *		The q-quantile of a statement's latency histogram, in ms: the middle
 *		of the bucket that holds it, clamped to the observed min and max.
 */
static double
hist_percentile(const pfgCounters *k, double q)
{
	uint64		total = 0;
	uint64		seen = 0;
	uint64		rank;
	int			b;

	for (b = 0; b < PFG_HIST_BUCKETS; b++)
		total += k->hist[b];
	if (total == 0)
		return 0;
	rank = (uint64) ceil(q * total);
	if (rank < 1)
		rank = 1;
	for (b = 0; b < PFG_HIST_BUCKETS; b++)
	{
		seen += k->hist[b];
		if (seen >= rank)
		{
			double		v = pfg_hist_bucket_ms(b);

			return Max(k->min_ms, Min(k->max_ms, v));
		}
	}
	return k->max_ms;
}

/*
 * perfguard_statements
 *		Rows of perfguard.statements.
 */
Datum
perfguard_statements(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgCollect	c = {NULL, sizeof(pfgStmtEntry), 0, 0};
	bool		all = pfg_report_sees_all();
	Oid			me = GetUserId();
	int			i;

	pfg_check_preloaded();
	pfg_scope_flush();
	InitMaterializedSRF(fcinfo, 0);
	pfg_store_foreach_statement(collect_cb, &c);

	for (i = 0; i < c.n; i++)
	{
		pfgStmtEntry *e = (pfgStmtEntry *) (c.data + c.entrysize * i);
		pfgCounters *k = &e->counters;
		Datum		values[24];
		bool		nulls[24];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.userid);
		values[j++] = ObjectIdGetDatum(e->key.dbid);
		values[j++] = Int64GetDatum((int64) e->key.queryid);
		values[j++] = BoolGetDatum(e->key.toplevel);
		if ((all || e->key.userid == me) && e->query[0] != '\0')
			values[j++] = CStringGetTextDatum(e->query);
		else
			nulls[j++] = true;
		values[j++] = CStringGetTextDatum(cmd_name(e->cmdtype));
		values[j++] = Int64GetDatum(k->calls);
		values[j++] = Float8GetDatum(k->total_ms);
		values[j++] = Float8GetDatum(k->mean_ms);
		values[j++] = Float8GetDatum(k->min_ms);
		values[j++] = Float8GetDatum(k->max_ms);
		values[j++] = Float8GetDatum(k->calls > 1 ?
									 sqrt(k->sum_var_ms / k->calls) : 0.0);
		values[j++] = Int64GetDatum(k->rows);
		values[j++] = Int64GetDatum(k->shared_blks_hit);
		values[j++] = Int64GetDatum(k->shared_blks_read);
		values[j++] = Int64GetDatum(k->temp_blks_written);
		values[j++] = Int64GetDatum(k->duplicate_calls);
		values[j++] = Int64GetDatum(k->n_plus_one_calls);
		values[j++] = TimestampTzGetDatum(k->first_seen);
		values[j++] = TimestampTzGetDatum(k->last_seen);
		values[j++] = Float8GetDatum(hist_percentile(k, 0.50));
		values[j++] = Float8GetDatum(hist_percentile(k, 0.95));
		values[j++] = Float8GetDatum(hist_percentile(k, 0.99));
		Assert(j == 23);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * perfguard_statements_history
 *		One row per statement and recent time window (perfguard.window long,
 *		the last PFG_WINDOWS of them): when did a query get slow?
 */
Datum
perfguard_statements_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgCollect	c = {NULL, sizeof(pfgStmtEntry), 0, 0};
	int64		wlen = (int64) pfg_window * 1000;
	int32		current = (int32) (GetCurrentTimestamp() / wlen);
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	pfg_store_foreach_statement(collect_cb, &c);

	for (i = 0; i < c.n; i++)
	{
		pfgStmtEntry *e = (pfgStmtEntry *) (c.data + c.entrysize * i);
		int			w;

		for (w = 0; w < PFG_WINDOWS; w++)
		{
			Datum		values[8];
			bool		nulls[8];
			int32		window = e->counters.win[w].window;

			if (e->counters.win[w].calls == 0 ||
				window <= current - PFG_WINDOWS || window > current)
				continue;
			memset(nulls, 0, sizeof(nulls));
			values[0] = ObjectIdGetDatum(e->key.userid);
			values[1] = ObjectIdGetDatum(e->key.dbid);
			values[2] = Int64GetDatum((int64) e->key.queryid);
			values[3] = BoolGetDatum(e->key.toplevel);
			values[4] = TimestampTzGetDatum((TimestampTz) window * wlen);
			values[5] = Int64GetDatum(e->counters.win[w].calls);
			values[6] = Float8GetDatum(e->counters.win[w].total_ms);
			values[7] = Float8GetDatum(e->counters.win[w].total_ms /
									   e->counters.win[w].calls);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/*
 * perfguard_errors
 *		Rows of perfguard.errors: failed statements per fingerprint and
 *		SQLSTATE.  The message of the last one follows the text rules.
 */
Datum
perfguard_errors(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgCollect	c = {NULL, sizeof(pfgErrorEntry), 0, 0};
	bool		all = pfg_report_sees_all();
	Oid			me = GetUserId();
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	pfg_store_foreach_error(collect_cb, &c);

	for (i = 0; i < c.n; i++)
	{
		pfgErrorEntry *e = (pfgErrorEntry *) (c.data + c.entrysize * i);
		Datum		values[8];
		bool		nulls[8];

		memset(nulls, 0, sizeof(nulls));
		values[0] = ObjectIdGetDatum(e->key.userid);
		values[1] = ObjectIdGetDatum(e->key.dbid);
		values[2] = Int64GetDatum((int64) e->key.queryid);
		values[3] = CStringGetTextDatum(unpack_sql_state(e->key.sqlstate));
		if (all || e->key.userid == me)
			values[4] = CStringGetTextDatum(e->message);
		else
			nulls[4] = true;
		values[5] = Int64GetDatum(e->count);
		values[6] = TimestampTzGetDatum(e->first_seen);
		values[7] = TimestampTzGetDatum(e->last_seen);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*---- suppression ----*/

static void
ignore_key_route(pfgIgnoreKey *key, text *route, char **cstr)
{
	char	   *r = text_to_cstring(route);

	if (r[0] == '\0' || strlen(r) >= PFG_ROUTE_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid route \"%s\"", r),
				 errdetail("A route has 1 to %d bytes.", PFG_ROUTE_LEN - 1)));
	memset(key, 0, sizeof(*key));
	key->kind = PFG_IGNORE_ROUTE;
	key->route_hash = pfg_route_hash(r);
	*cstr = r;
}

static char *
reason_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *reason;

	if (PG_ARGISNULL(argno))
		return NULL;
	reason = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (strlen(reason) >= PFG_REASON_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("reason is too long"),
				 errdetail("A reason has at most %d bytes.", PFG_REASON_LEN - 1)));
	return reason;
}

static void
ignore_add(pfgIgnoreKey *key, const char *route, const char *reason)
{
	if (!pfg_store_add_ignore(key, route, reason))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many suppression rules"),
				 errhint("Remove rules with perfguard.unignore() or perfguard.unignore_route().")));
}

/*
 * perfguard_ignore
 *		perfguard.ignore(queryid, reason): suppress the findings of one
 *		fingerprint (N+1, duplicate, write loop) on every route.
 */
Datum
perfguard_ignore(PG_FUNCTION_ARGS)
{
	pfgIgnoreKey key;

	pfg_check_preloaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("queryid must not be null")));
	memset(&key, 0, sizeof(key));
	key.kind = PFG_IGNORE_QUERYID;
	key.queryid = (uint64) PG_GETARG_INT64(0);
	ignore_add(&key, NULL, reason_arg(fcinfo, 1));
	PG_RETURN_VOID();
}

Datum
perfguard_unignore(PG_FUNCTION_ARGS)
{
	pfgIgnoreKey key;

	pfg_check_preloaded();
	memset(&key, 0, sizeof(key));
	key.kind = PFG_IGNORE_QUERYID;
	key.queryid = (uint64) PG_GETARG_INT64(0);
	PG_RETURN_BOOL(pfg_store_remove_ignore(&key));
}

/*
 * perfguard_ignore_route
 *		perfguard.ignore_route(route, reason): suppress every finding of the
 *		requests of one route (label).
 */
Datum
perfguard_ignore_route(PG_FUNCTION_ARGS)
{
	pfgIgnoreKey key;
	char	   *route;

	pfg_check_preloaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("route must not be null")));
	ignore_key_route(&key, PG_GETARG_TEXT_PP(0), &route);
	ignore_add(&key, route, reason_arg(fcinfo, 1));
	PG_RETURN_VOID();
}

Datum
perfguard_unignore_route(PG_FUNCTION_ARGS)
{
	pfgIgnoreKey key;
	char	   *route;

	pfg_check_preloaded();
	ignore_key_route(&key, PG_GETARG_TEXT_PP(0), &route);
	PG_RETURN_BOOL(pfg_store_remove_ignore(&key));
}

/*
 * perfguard_ignore_rules
 *		The suppression rules.
 */
Datum
perfguard_ignore_rules(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgCollect	c = {NULL, sizeof(pfgIgnoreEntry), 0, 0};
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	pfg_store_foreach_ignore(collect_cb, &c);
	for (i = 0; i < c.n; i++)
	{
		pfgIgnoreEntry *e = (pfgIgnoreEntry *) (c.data + c.entrysize * i);
		Datum		values[6];
		bool		nulls[6];

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(e->key.kind == PFG_IGNORE_QUERYID ?
										"queryid" : "route");
		if (e->key.kind == PFG_IGNORE_QUERYID)
		{
			values[1] = Int64GetDatum((int64) e->key.queryid);
			nulls[2] = true;
		}
		else
		{
			nulls[1] = true;
			values[2] = CStringGetTextDatum(e->route);
		}
		if (e->reason[0])
			values[3] = CStringGetTextDatum(e->reason);
		else
			nulls[3] = true;
		values[4] = TimestampTzGetDatum(e->created);
		values[5] = ObjectIdGetDatum(e->created_by);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * perfguard_findings_raw
 *		Rows of one kind of scope finding (a pfgFindingKind; the view
 *		perfguard._finding_kinds names them); the views add text and
 *		suggestions.  An unknown kind has no rows.
 */
Datum
perfguard_findings_raw(PG_FUNCTION_ARGS)
{
	int32		kind = PG_GETARG_INT32(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgCollect	c = {NULL, sizeof(pfgFindingEntry), 0, 0};
	bool		all = pfg_report_sees_all();
	Oid			me = GetUserId();
	int			i;

	pfg_check_preloaded();
	pfg_scope_flush();
	InitMaterializedSRF(fcinfo, 0);
	pfg_store_foreach_finding(collect_cb, &c);

	for (i = 0; i < c.n; i++)
	{
		pfgFindingEntry *e = (pfgFindingEntry *) (c.data + c.entrysize * i);
		Datum		values[19];
		bool		nulls[19];
		int			j = 0;

		if (e->key.kind != kind)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.dbid);
		values[j++] = ObjectIdGetDatum(e->key.userid);
		values[j++] = CStringGetTextDatum(e->route);
		values[j++] = Int64GetDatum((int64) e->key.queryid);
		if (e->key.parent_queryid != 0)
			values[j++] = Int64GetDatum((int64) e->key.parent_queryid);
		else
			nulls[j++] = true;
		values[j++] = CStringGetTextDatum(cmd_name(e->cmdtype));
		values[j++] = Int64GetDatum(e->occurrences);
		values[j++] = Int64GetDatum(e->total_repeats);
		values[j++] = Int64GetDatum(e->max_repeats);
		values[j++] = Int64GetDatum(e->max_distinct);
		values[j++] = Int64GetDatum(e->total_duplicates);
		values[j++] = Int64GetDatum(e->max_duplicates);
		values[j++] = Float8GetDatum(e->wasted_ms);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		if ((all || e->key.userid == me) && e->example_params[0] != '\0')
			values[j++] = CStringGetTextDatum(e->example_params);
		else
			nulls[j++] = true;
		values[j++] = BoolGetDatum((e->key.ignored & PFG_FINDING_IGNORED) != 0);
		if (e->seq_id != 0)
			values[j++] = Int64GetDatum((int64) e->seq_id);
		else
			nulls[j++] = true;
		if (e->nseq > 0)
		{
			Datum		elems[PFG_SEQ_MAX];
			int			k;

			for (k = 0; k < e->nseq; k++)
				elems[k] = Int64GetDatum((int64) e->seq[k]);
			values[j++] = PointerGetDatum(construct_array(elems, e->nseq, INT8OID,
														  8, FLOAT8PASSBYVAL,
														  TYPALIGN_DOUBLE));
		}
		else
			nulls[j++] = true;
		values[j++] = BoolGetDatum((e->key.ignored & PFG_FINDING_TEST) != 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Open requests with an id, copied (into room allocated beforehand). */
typedef struct openCollect
{
	pfgRequestEntry *items;
	int			n;
	int			cap;
} openCollect;

static void
open_collect_cb(const pfgRequestKey *key, const char *route,
				const pfgRequestDelta *d, void *arg)
{
	openCollect *oc = (openCollect *) arg;
	pfgRequestEntry *e;

	if (oc->n >= oc->cap)
		return;
	e = &oc->items[oc->n++];
	memset(e, 0, sizeof(*e));
	e->key = *key;
	strlcpy(e->route, route, PFG_ROUTE_LEN);
	e->requests = 1;
	e->queries = d->queries;
	e->max_queries = d->queries;
	e->total_ms = d->total_ms;
	e->max_ms = d->total_ms;
	e->n_plus_one_requests = d->had_n_plus_one ? 1 : 0;
	e->duplicate_requests = d->had_duplicate ? 1 : 0;
	e->write_loop_requests = d->had_write_loop ? 1 : 0;
	e->last_seen = GetCurrentTimestamp();
}

/*
 * add_open_requests
 *		Add the requests with an id that are still open to the finished ones
 *		of their route, so that a request shows as soon as it ran.
 */
static void
add_open_requests(pfgCollect *c)
{
	openCollect oc;
	int			i,
				k;

	oc.cap = pfg_max_open_requests;
	oc.n = 0;
	oc.items = palloc(sizeof(pfgRequestEntry) * oc.cap);
	pfg_scope_foreach_open(open_collect_cb, &oc);
	for (k = 0; k < oc.n; k++)
	{
		pfgRequestEntry *o = &oc.items[k];
		pfgRequestEntry *e = NULL;

		for (i = 0; i < c->n; i++)
		{
			pfgRequestEntry *x = (pfgRequestEntry *) (c->data + c->entrysize * i);

			if (memcmp(&x->key, &o->key, sizeof(o->key)) == 0)
			{
				e = x;
				break;
			}
		}
		if (e == NULL)
		{
			collect_cb(o, c);
			continue;
		}
		e->requests++;
		e->queries += o->queries;
		e->max_queries = Max(e->max_queries, o->queries);
		e->total_ms += o->total_ms;
		e->max_ms = Max(e->max_ms, o->total_ms);
		e->n_plus_one_requests += o->n_plus_one_requests;
		e->duplicate_requests += o->duplicate_requests;
		e->write_loop_requests += o->write_loop_requests;
		e->last_seen = Max(e->last_seen, o->last_seen);
	}
	pfree(oc.items);
}

/*
 * perfguard_requests
 *		Rows of perfguard.requests: the finished requests of each route, and
 *		the requests with an id still open.
 */
Datum
perfguard_requests(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgCollect	c = {NULL, sizeof(pfgRequestEntry), 0, 0};
	int			i;

	pfg_check_preloaded();
	pfg_scope_flush();
	InitMaterializedSRF(fcinfo, 0);
	pfg_store_foreach_request(collect_cb, &c);
	add_open_requests(&c);

	for (i = 0; i < c.n; i++)
	{
		pfgRequestEntry *e = (pfgRequestEntry *) (c.data + c.entrysize * i);
		Datum		values[13];
		bool		nulls[13];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.dbid);
		values[j++] = ObjectIdGetDatum(e->key.userid);
		values[j++] = CStringGetTextDatum(e->route);
		values[j++] = Int64GetDatum(e->requests);
		values[j++] = Int64GetDatum(e->queries);
		values[j++] = Float8GetDatum(e->requests ? (double) e->queries / e->requests : 0);
		values[j++] = Int64GetDatum(e->max_queries);
		values[j++] = Float8GetDatum(e->requests ? e->total_ms / e->requests : 0);
		values[j++] = Float8GetDatum(e->max_ms);
		values[j++] = Int64GetDatum(e->n_plus_one_requests);
		values[j++] = Int64GetDatum(e->duplicate_requests);
		values[j++] = Int64GetDatum(e->write_loop_requests);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * perfguard_info
 *		The single row of perfguard.info.
 */
Datum
perfguard_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[8];
	bool		nulls[8];
	TimestampTz stats_reset;
	int64		entries,
				max_entries,
				dropped_entries,
				dropped_events,
				findings,
				requests;

	pfg_check_preloaded();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	pfg_store_info(&stats_reset, &entries, &max_entries, &dropped_entries,
				   &dropped_events, &findings, &requests);
	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(PFG_VERSION);
	values[1] = TimestampTzGetDatum(stats_reset);
	values[2] = Int64GetDatum(entries);
	values[3] = Int64GetDatum(max_entries);
	values[4] = Int64GetDatum(dropped_entries);
	values[5] = Int64GetDatum(dropped_events);
	values[6] = Int64GetDatum(findings);
	values[7] = Int64GetDatum(requests);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * perfguard_reset
 *		Clear everything.  Not granted to PUBLIC by the extension script.
 */
Datum
perfguard_reset(PG_FUNCTION_ARGS)
{
	pfg_check_preloaded();
	pfg_store_reset();
	PG_RETURN_VOID();
}

Datum
perfguard_begin_request(PG_FUNCTION_ARGS)
{
	char	   *label = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));

	pfg_check_preloaded();
	if (label && strlen(label) >= PFG_ROUTE_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("request label is too long"),
				 errdetail("The label has %d bytes; at most %d are allowed.",
						   (int) strlen(label), PFG_ROUTE_LEN - 1)));
	pfg_scope_begin_explicit(label);
	PG_RETURN_VOID();
}

Datum
perfguard_end_request(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5];
	int64		queries;
	double		total_ms;
	int32		np,
				dup,
				wl;

	pfg_check_preloaded();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!pfg_scope_end_explicit(&queries, &total_ms, &np, &dup, &wl))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no request scope is open"),
				 errhint("Call perfguard.begin_request() first.")));
	/* guards at 'collect': the end of the request is where they fail */
	if (pfg_on_n_plus_one == PFG_GUARD_COLLECT ||
		pfg_on_duplicate == PFG_GUARD_COLLECT ||
		pfg_on_too_many_queries == PFG_GUARD_COLLECT)
		pfg_scope_check_collected();
	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(queries);
	values[1] = Float8GetDatum(total_ms);
	values[2] = Int32GetDatum(np);
	values[3] = Int32GetDatum(dup);
	values[4] = Int32GetDatum(wl);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*---- plan tables ----*/

/*
 * perfguard_slow_queries
 *		Rows of perfguard._slow_queries(): the slow table.  Plans only for
 *		those who may see the statement's text.
 */
Datum
perfguard_slow_queries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgSlowEntry *copy;
	int			n;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);

	/* copied under the lock, tuples built outside it */
	n = pfg_plans_copy_slow(&copy);

	for (i = 0; i < n; i++)
	{
		pfgSlowEntry *e = &copy[i];
		Datum		values[15];
		bool		nulls[15];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.userid);
		values[j++] = ObjectIdGetDatum(e->key.dbid);
		values[j++] = Int64GetDatum((int64) e->key.queryid);
		values[j++] = BoolGetDatum(e->key.toplevel);
		values[j++] = Int64GetDatum(e->slow_calls);
		values[j++] = Float8GetDatum(e->slow_total_ms);
		values[j++] = Float8GetDatum(e->slow_max_ms);
		values[j++] = Int64GetDatum(e->samples);
		if (e->plan[0] != '\0' && pfg_report_may_see(e->key.userid))
			values[j++] = CStringGetTextDatum(e->plan);
		else
			nulls[j++] = true;
		if (e->plan_ms >= 0)
			values[j++] = Float8GetDatum(e->plan_ms);
		else
			nulls[j++] = true;
		values[j++] = BoolGetDatum(e->plan_analyzed);
		values[j++] = BoolGetDatum(e->budget > 0);
		values[j++] = TimestampTzGetDatum(e->first_seen);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		Assert(j == 14);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * perfguard_plan_findings
 *		Rows of perfguard._plan_findings().
 */
Datum
perfguard_plan_findings(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgPlanFinding *copy;
	int			n;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	n = pfg_plans_copy_findings(&copy);

	for (i = 0; i < n; i++)
	{
		pfgPlanFinding *e = &copy[i];
		Datum		values[14];
		bool		nulls[14];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.stmt.userid);
		values[j++] = ObjectIdGetDatum(e->key.stmt.dbid);
		values[j++] = Int64GetDatum((int64) e->key.stmt.queryid);
		values[j++] = BoolGetDatum(e->key.stmt.toplevel);
		if (pfg_plan_finding_name(e->key.code) == NULL)
			continue;
		values[j++] = CStringGetTextDatum(pfg_plan_finding_name(e->key.code));
		values[j++] = CStringGetTextDatum(e->node);
		if (e->relation[0])
			values[j++] = CStringGetTextDatum(e->relation);
		else
			nulls[j++] = true;
		values[j++] = CStringGetTextDatum(e->detail);
		values[j++] = CStringGetTextDatum(e->suggestion);
		values[j++] = Int64GetDatum(e->occurrences);
		values[j++] = Float8GetDatum(e->total_ms);
		values[j++] = Int64GetDatum(e->value_sum);
		values[j++] = Int64GetDatum(e->value_max);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		Assert(j == 14);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * perfguard_offsets
 *		Rows of perfguard._offsets().
 */
Datum
perfguard_offsets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgOffsetEntry *copy;
	int			n;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	n = pfg_plans_copy_offsets(&copy);

	for (i = 0; i < n; i++)
	{
		pfgOffsetEntry *e = &copy[i];
		Datum		values[10];
		bool		nulls[10];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		values[j++] = ObjectIdGetDatum(e->key.userid);
		values[j++] = ObjectIdGetDatum(e->key.dbid);
		values[j++] = Int64GetDatum((int64) e->key.queryid);
		values[j++] = BoolGetDatum(e->key.toplevel);
		values[j++] = Int64GetDatum(e->calls);
		values[j++] = Float8GetDatum(e->total_ms);
		values[j++] = Int64GetDatum(e->max_offset);
		values[j++] = Int64GetDatum(e->sum_offset);
		values[j++] = Int64GetDatum(e->rows_returned);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*---- findings collected by guards at 'collect' ----*/

/*
 * perfguard_collected
 *		perfguard.collected(): the findings this session's guards at
 *		'collect' kept, oldest first; reading them forgets them.
 */
Datum
perfguard_collected(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const pfgCollected *c;
	int			lost;
	int			n;
	int			i;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	n = pfg_scope_collected(&c, &lost);
	for (i = 0; i < n; i++)
	{
		Datum		values[7];
		bool		nulls[7];

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(c[i].kind == PFG_FIND_NPLUSONE ? "n_plus_one" :
										c[i].kind == PFG_FIND_DUPLICATE ? "duplicate" :
										"too_many_queries");
		values[1] = CStringGetTextDatum(c[i].label);
		if (c[i].query)
			values[2] = CStringGetTextDatum(c[i].query);
		else
			nulls[2] = true;
		values[3] = Int64GetDatum(c[i].count);
		values[4] = Int32GetDatum(c[i].distinct);
		if (c[i].parent)
			values[5] = CStringGetTextDatum(c[i].parent);
		else
			nulls[5] = true;
		if (c[i].fix)
			values[6] = CStringGetTextDatum(c[i].fix);
		else
			nulls[6] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfg_scope_clear_collected();
	return (Datum) 0;
}

/*
 * perfguard_check_collected
 *		perfguard.check_collected(): fail once, listing every finding the
 *		guards at 'collect' kept (the end of a test), or do nothing.
 */
Datum
perfguard_check_collected(PG_FUNCTION_ARGS)
{
	pfg_check_preloaded();
	pfg_scope_check_collected();
	PG_RETURN_VOID();
}
