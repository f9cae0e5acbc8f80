/*-------------------------------------------------------------------------
 *
 * report.c
 *		Rules every report-time function follows, in one place:
 *		- the clear error when perfguard is not preloaded;
 *		- perfguard's own statements are marked (pfg_report_self), so that
 *		  the executor hooks record no plan sample and no finding for a
 *		  report reading the views;
 *		- who may see query text, parameters and plans: superusers, members
 *		  of pg_read_all_stats, and the statement's own user (as
 *		  pg_stat_statements); everyone sees the counters;
 *		- code that reads the catalogs and may fail on one statement (a
 *		  table dropped since, a text that no longer parses) runs in an
 *		  internal subtransaction that is always rolled back: a failure
 *		  skips that statement, never the report, while a query cancel or a
 *		  shutdown still goes through (pfg_report_guarded); at the end of a
 *		  user's statement nothing goes through (pfg_report_guarded_quiet).
 *
 * Report time may read the catalogs; nothing here is called per statement.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/report.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "report.h"
#include "store.h"

/*
 * Set while a top-level statement calls one of perfguard's SQL functions
 * (every one of them starts with pfg_check_preloaded): perfguard.c's
 * ExecutorEnd then records no plan sample and no finding for it, and clears
 * it at the end of the top-level statement.  Backend-local.
 */
bool		pfg_report_self = false;

/*
 * pfg_check_preloaded
 *		The clear error when shared memory is not there.  Marks the current
 *		statement as perfguard's own.
 */
void
pfg_check_preloaded(void)
{
	pfg_report_self = true;
	if (!pfg_store_ready())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("perfguard must be loaded via shared_preload_libraries"),
				 errhint("Add perfguard to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * pfg_report_sees_all
 *		May the current user see every statement's text (superuser or member
 *		of pg_read_all_stats)?
 */
bool
pfg_report_sees_all(void)
{
	return has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
}

/*
 * pfg_report_may_see
 *		May the current user see the text of a statement run by "userid"?
 */
bool
pfg_report_may_see(Oid userid)
{
	return userid == GetUserId() || pfg_report_sees_all();
}

/*
 * guarded_run
 *		Run fn(arg) in "cxt" inside an internal subtransaction that is always
 *		rolled back; false if it failed.  A query cancel or a shutdown is
 *		re-thrown when "rethrow" says so, else discarded like any error.
 */
static bool
guarded_run(void (*fn) (void *), void *arg, MemoryContext cxt, bool rethrow)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		ok = false;
		if (rethrow &&
			(edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			 edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN))
		{
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			ReThrowError(edata);
		}
		FreeErrorData(edata);
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	return ok;
}

/*
 * pfg_report_guarded
 *		Run fn(arg) in an internal subtransaction that is always rolled back
 *		(releasing the locks parse analysis took); false if it failed, with
 *		the error discarded.  fn runs in "keepcxt", so what it allocates
 *		there survives (a caller that analyses many statements passes a
 *		context of its own and resets it after each).  A query cancel or a
 *		shutdown is re-thrown.
 */
bool
pfg_report_guarded(void (*fn) (void *), void *arg, MemoryContext keepcxt)
{
	return guarded_run(fn, arg, keepcxt, true);
}

/*
 * pfg_report_guarded_quiet
 *		The same, for work done at the end of a user's statement that has
 *		already succeeded (the index evidence of a sampled execution): every
 *		error, a query cancel or a statement timeout included, only loses
 *		that work, and the statement still succeeds.  The caller checks that
 *		a subtransaction may start (a transaction in progress, not in
 *		parallel mode).
 */
bool
pfg_report_guarded_quiet(void (*fn) (void *), void *arg, MemoryContext cxt)
{
	return guarded_run(fn, arg, cxt, false);
}

/*
 * pfg_report_collect_cb
 *		A pfg_entry_cb that appends a copy of each entry to a pfgCollect
 *		("arg"): it only copies, so it may run under the partition locks of
 *		a table walk; the views build their tuples from the copies after.
 */
void
pfg_report_collect_cb(const void *entry, void *arg)
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
