/*-------------------------------------------------------------------------
 *
 * store_views.c
 *		The set-returning functions behind perfguard's views of the store
 *		(statements, history, errors, requests, info, slow queries, plan
 *		findings, offsets), the suppression rules, reset, and the explicit
 *		request API.  The index advice and keyset functions build their own
 *		rows (index_advice.c, keyset.c); the fix of an N+1 is
 *		nplusone_fix.c's; the scope findings and the cards of
 *		perfguard.findings are findings.c's.  Also the index advice cache of
 *		perfguard.findings (store_cache.c) and the index sightings DROP
 *		advice waits on.
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
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "report.h"
#include "scope.h"
#include "scope_findings.h"
#include "store.h"
#include "store_cache.h"
#include "store_plans.h"

PG_FUNCTION_INFO_V1(perfguard_statements);
PG_FUNCTION_INFO_V1(perfguard_statements_history);
PG_FUNCTION_INFO_V1(perfguard_errors);
PG_FUNCTION_INFO_V1(perfguard_ignore);
PG_FUNCTION_INFO_V1(perfguard_unignore);
PG_FUNCTION_INFO_V1(perfguard_ignore_route);
PG_FUNCTION_INFO_V1(perfguard_unignore_route);
PG_FUNCTION_INFO_V1(perfguard_ignore_rules);
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
PG_FUNCTION_INFO_V1(perfguard_advice_cached);
PG_FUNCTION_INFO_V1(perfguard_refresh_advice);
PG_FUNCTION_INFO_V1(perfguard_index_first_seen);
PG_FUNCTION_INFO_V1(perfguard_texts_of);


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
 * put_stmt_key
 *		The four columns of a statement key (userid, dbid, queryid, toplevel)
 *		at values[j..j+3]; returns the next column.
 */
static int
put_stmt_key(Datum *values, int j, const pfgStmtKey *k)
{
	values[j++] = ObjectIdGetDatum(k->userid);
	values[j++] = ObjectIdGetDatum(k->dbid);
	values[j++] = Int64GetDatum((int64) k->queryid);
	values[j++] = BoolGetDatum(k->toplevel);
	return j;
}

/*
 * visible_query
 *		The normalised text of a statement, when the caller may see it, else
 *		NULL.
 */
static char *
visible_query(const pfgStmtKey *k)
{
	return pfg_report_may_see(k->userid) ?
		pfg_store_get_query(k->userid, k->dbid, k->queryid, k->toplevel) : NULL;
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
	pfg_store_foreach_statement(pfg_report_collect_cb, &c);

	for (i = 0; i < c.n; i++)
	{
		pfgStmtEntry *e = (pfgStmtEntry *) (c.data + c.entrysize * i);
		pfgCounters *k = &e->counters;
		Datum		values[24];
		bool		nulls[24];
		int			j = 0;

		memset(nulls, 0, sizeof(nulls));
		j = put_stmt_key(values, j, &e->key);
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
	pfg_store_foreach_statement(pfg_report_collect_cb, &c);

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
	pfg_store_foreach_error(pfg_report_collect_cb, &c);

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
 * ignore_key_queryid
 *		The key of a rule on one fingerprint: on every route, or, when
 *		argument "routearg" is given and not NULL, on that route only.
 */
static void
ignore_key_queryid(FunctionCallInfo fcinfo, int routearg, pfgIgnoreKey *key,
				   char **route)
{
	memset(key, 0, sizeof(*key));
	*route = NULL;
	if (PG_NARGS() > routearg && !PG_ARGISNULL(routearg))
		ignore_key_route(key, PG_GETARG_TEXT_PP(routearg), route);
	key->kind = *route ? PFG_IGNORE_QUERYID_ROUTE : PFG_IGNORE_QUERYID;
	key->queryid = (uint64) PG_GETARG_INT64(0);
}

/*
 * perfguard_ignore
 *		perfguard.ignore(queryid, reason, route): suppress the findings of one
 *		fingerprint (N+1, duplicate, write loop, and in perfguard.findings its
 *		plan findings) on every route, or on one route.
 */
Datum
perfguard_ignore(PG_FUNCTION_ARGS)
{
	pfgIgnoreKey key;
	char	   *route;

	pfg_check_preloaded();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("queryid must not be null")));
	ignore_key_queryid(fcinfo, 2, &key, &route);
	ignore_add(&key, route, reason_arg(fcinfo, 1));
	PG_RETURN_VOID();
}

/*
 * perfguard_unignore
 *		perfguard.unignore(queryid [, route]): remove the rule on one
 *		fingerprint (everywhere, or on one route).
 */
Datum
perfguard_unignore(PG_FUNCTION_ARGS)
{
	pfgIgnoreKey key;
	char	   *route;

	pfg_check_preloaded();
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	ignore_key_queryid(fcinfo, 1, &key, &route);
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
	pfg_store_foreach_ignore(pfg_report_collect_cb, &c);
	for (i = 0; i < c.n; i++)
	{
		pfgIgnoreEntry *e = (pfgIgnoreEntry *) (c.data + c.entrysize * i);
		Datum		values[6];
		bool		nulls[6];

		memset(nulls, 0, sizeof(nulls));
		values[0] = CStringGetTextDatum(e->key.kind == PFG_IGNORE_QUERYID ? "queryid" :
										e->key.kind == PFG_IGNORE_ROUTE ? "route" :
										"queryid_route");
		if (e->key.kind != PFG_IGNORE_ROUTE)
			values[1] = Int64GetDatum((int64) e->key.queryid);
		else
			nulls[1] = true;
		if (e->key.kind != PFG_IGNORE_QUERYID)
			values[2] = CStringGetTextDatum(e->route);
		else
			nulls[2] = true;
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

/* A text column, NULL when empty or hidden. */
#define TEXT_OR_NULL(cond, str) \
	do { \
		if ((cond) && (str)[0] != '\0') \
			values[j++] = CStringGetTextDatum(str); \
		else \
			nulls[j++] = true; \
	} while (0)

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
			pfg_report_collect_cb(o, c);
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
	pfg_store_foreach_request(pfg_report_collect_cb, &c);
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
		Datum		values[24];
		bool		nulls[24];
		int			j = 0;
		pfgStmtEntry *st = palloc(sizeof(pfgStmtEntry));
		bool		has_st = pfg_store_get_statement(&e->key, st);
		bool		sees = pfg_report_may_see(e->key.userid);

		memset(nulls, 0, sizeof(nulls));
		j = put_stmt_key(values, j, &e->key);
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
		/* where the time goes, and the statement (no join with every one) */
		values[j++] = CStringGetTextDatum(e->route);
		values[j++] = Int64GetDatum(e->work_samples);
		values[j++] = Float8GetDatum(e->work_ms);
		values[j++] = Float8GetDatum(e->work_wall_ms);
		TEXT_OR_NULL(true, e->wait_what);
		TEXT_OR_NULL(has_st && sees, st->query);
		if (has_st)
		{
			values[j++] = Int64GetDatum(st->counters.calls);
			values[j++] = Float8GetDatum(st->counters.mean_ms);
			values[j++] = Float8GetDatum(st->counters.max_ms);
		}
		else
		{
			nulls[j++] = true;
			nulls[j++] = true;
			nulls[j++] = true;
		}
		Assert(j == 23);
		pfree(st);
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
		Datum		values[16];
		bool		nulls[16];
		int			j = 0;
		char	   *q;

		memset(nulls, 0, sizeof(nulls));
		j = put_stmt_key(values, j, &e->key.stmt);
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
		values[j++] = CStringGetTextDatum(e->route);
		q = visible_query(&e->key.stmt);
		TEXT_OR_NULL(q != NULL, q ? q : "");
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
		Datum		values[13];
		bool		nulls[13];
		int			j = 0;
		char	   *q;

		memset(nulls, 0, sizeof(nulls));
		j = put_stmt_key(values, j, &e->key);
		values[j++] = Int64GetDatum(e->calls);
		values[j++] = Float8GetDatum(e->total_ms);
		values[j++] = Int64GetDatum(e->max_offset);
		values[j++] = Int64GetDatum(e->sum_offset);
		values[j++] = Int64GetDatum(e->rows_returned);
		values[j++] = TimestampTzGetDatum(e->last_seen);
		values[j++] = CStringGetTextDatum(e->route);
		q = visible_query(&e->key);
		TEXT_OR_NULL(q != NULL, q ? q : "");
		values[j++] = Float8GetDatum(e->max_ms);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*---- the index advice of perfguard.findings (store_cache.c) ----*/

/*
 * compute_advice
 *		The index advice of the current database, as the JSON text of
 *		perfguard.index_advice's rows (in its order, at most 200), stored in
 *		the cache, with the share of the time of each missing index's
 *		statements spent waiting (perfguard._waiting).  Plans hypothetical
 *		indexes: seconds on a full store.
 */
static char *
compute_advice(int *rows)
{
	MemoryContext caller = CurrentMemoryContext;
	uint64		gen = pfg_cache_generation();
	char	   *json;
	bool		isnull;
	int			ret;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ret = SPI_execute("SELECT coalesce(jsonb_agg(to_jsonb(a) || to_jsonb(w) ORDER BY ord), '[]')::text,"
					  "       count(*)::int4"
					  "  FROM (SELECT *, row_number() OVER () AS ord"
					  "          FROM perfguard.index_advice LIMIT 200) a,"
					  "       perfguard._waiting(CASE WHEN a.kind = 'missing' THEN a.queryids END) w",
					  false, 0);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not compute the index advice");
	json = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	json = MemoryContextStrdup(caller, json ? json : "[]");
	*rows = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();
	(void) pfg_cache_put(MyDatabaseId, json, gen);
	return json;
}

/*
 * perfguard_advice_cached
 *		perfguard._advice_cached(): the index advice of every database whose
 *		advice is cached (dbid, computed_at, advice as jsonb text); the
 *		current database's is recomputed first when it is missing or stale
 *		(older than perfguard.advice_refresh, or DDL or ANALYZE ran since).
 */
Datum
perfguard_advice_cached(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	pfgCachedAdvice *cached;
	int			n;
	int			i;
	bool		mine = false;
	char	   *json = NULL;

	pfg_check_preloaded();
	InitMaterializedSRF(fcinfo, 0);
	n = pfg_cache_get(pfg_advice_refresh, &cached);
	for (i = 0; i < n; i++)
		if (cached[i].dbid == MyDatabaseId && cached[i].fresh)
			mine = true;
	if (!mine)
	{
		int			rows;

		json = compute_advice(&rows);
		n = pfg_cache_get(pfg_advice_refresh, &cached);
	}
	for (i = 0; i < n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (cached[i].dbid == MyDatabaseId && json != NULL)
			continue;			/* computed now: returned below */
		values[0] = ObjectIdGetDatum(cached[i].dbid);
		values[1] = TimestampTzGetDatum(cached[i].computed_at);
		values[2] = CStringGetTextDatum(cached[i].json);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (json != NULL)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		/* also when it was too long to cache */
		values[0] = ObjectIdGetDatum(MyDatabaseId);
		values[1] = TimestampTzGetDatum(GetCurrentTimestamp());
		values[2] = CStringGetTextDatum(json);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * perfguard_refresh_advice
 *		perfguard.refresh_advice(): recompute the current database's index
 *		advice for perfguard.findings now; returns its number of rows.
 */
Datum
perfguard_refresh_advice(PG_FUNCTION_ARGS)
{
	int			rows;

	pfg_check_preloaded();
	(void) compute_advice(&rows);
	PG_RETURN_INT32(rows);
}

/*
 * perfguard_index_first_seen
 *		perfguard._index_first_seen(oids oid[]): when perfguard first saw
 *		each of the current database's indexes in oids (now for those seen
 *		for the first time); the sightings of its other indexes (dropped
 *		since) are forgotten.  The DROP advice of perfguard.index_advice
 *		waits perfguard.unused_index_min_age from then.
 */
Datum
perfguard_index_first_seen(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *enulls;
	Oid		   *keep;
	int			n;
	int			nkeep = 0;
	int			i;
	TimestampTz now = GetCurrentTimestamp();

	pfg_check_preloaded();
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("oids must be a one-dimensional array")));
	InitMaterializedSRF(fcinfo, 0);
	deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, &enulls, &n);
	keep = palloc(sizeof(Oid) * (n + 1));
	for (i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};
		Oid			oid;

		if (enulls[i])
			continue;
		oid = DatumGetObjectId(elems[i]);
		keep[nkeep++] = oid;
		values[0] = ObjectIdGetDatum(oid);
		values[1] = TimestampTzGetDatum(pfg_cache_first_seen(MyDatabaseId, oid, now));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfg_cache_forget_indexes(MyDatabaseId, keep, nkeep);
	return (Datum) 0;
}


/*---- texts of a few statements ----*/

typedef struct textsOfCtx
{
	const int64 *qids;			/* sorted */
	int			nqids;
	pfgStmtKey *found;			/* preallocated: no palloc under the lock */
	int			nfound;
	int			max;
} textsOfCtx;

static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static void
texts_of_cb(const void *entry, void *arg)
{
	const pfgStmtEntry *e = (const pfgStmtEntry *) entry;
	textsOfCtx *c = (textsOfCtx *) arg;
	int64		q = (int64) e->key.queryid;

	if (c->nfound < c->max && e->query[0] != '\0' &&
		bsearch(&q, c->qids, c->nqids, sizeof(int64), int64_cmp) != NULL)
		c->found[c->nfound++] = e->key;
}

/*
 * perfguard_texts_of
 *		perfguard._texts_of(queryids bigint[]): (userid, dbid, queryid,
 *		toplevel, query) of the statements with these query ids, text by the
 *		visibility rules.  One pass over the store, for the few statements a
 *		view needs (the index advice's), instead of joining every statement.
 */
Datum
perfguard_texts_of(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	Datum	   *elems;
	bool	   *enulls;
	int64	   *qids;
	int			n;
	int			i;
	textsOfCtx	c;

	pfg_check_preloaded();
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("queryids must be a one-dimensional array")));
	InitMaterializedSRF(fcinfo, 0);
	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &enulls, &n);
	qids = palloc(sizeof(int64) * (n + 1));
	c.nqids = 0;
	for (i = 0; i < n; i++)
		if (!enulls[i])
			qids[c.nqids++] = DatumGetInt64(elems[i]);
	if (c.nqids == 0)
		return (Datum) 0;
	qsort(qids, c.nqids, sizeof(int64), int64_cmp);
	c.qids = qids;
	c.max = pfg_max_statements;
	c.found = palloc(sizeof(pfgStmtKey) * c.max);
	c.nfound = 0;
	pfg_store_foreach_statement(texts_of_cb, &c);
	for (i = 0; i < c.nfound; i++)
	{
		pfgStmtKey *k = &c.found[i];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		char	   *t = visible_query(k);

		(void) put_stmt_key(values, 0, k);
		if (t)
			values[4] = CStringGetTextDatum(t);
		else
			nulls[4] = true;
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
