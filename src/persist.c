/*-------------------------------------------------------------------------
 *
 * persist.c
 *		The file protocol of every table perfguard saves across a clean
 *		restart (the statistics, pg_stat/perfguard.stat, and the remembered
 *		index advice, pg_stat/perfguard_advice.stat).
 *
 * Writing happens in the postmaster at a clean shutdown: into "<path>.tmp",
 * then durable_rename over "<path>"; any failure is reported at LOG and the
 * temporary file removed (the server is exiting: nothing may ERROR).
 * Reading happens once, when shared memory is created: the file is checked
 * (stamp: magic number, PostgreSQL major version, format version; the
 * caller checks the rest), loaded, then unlinked so that a crash restart
 * never reloads stale data.  Anything wrong gives a WARNING naming the file
 * and why, and the caller starts empty, never fails to start.
 *
 * Copyright (c) 2026, perfguard developers
 *
 * IDENTIFICATION
 *	  src/persist.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "storage/fd.h"

#include "persist.h"

/*
 * pfg_persist_stamp
 *		Fill the stamp of a file about to be written.
 */
void
pfg_persist_stamp(pfgFileStamp *stamp, uint32 magic, uint32 format)
{
	stamp->magic = magic;
	stamp->pg_major = PG_VERSION_NUM / 100;
	stamp->format = format;
}

/*
 * pfg_persist_check
 *		Why a file with this stamp cannot be loaded, or NULL when it can.
 *		"notmine" is the reason given for a foreign magic number.
 */
const char *
pfg_persist_check(const pfgFileStamp *stamp, uint32 magic, uint32 format,
				  const char *notmine)
{
	if (stamp->magic != magic)
		return notmine;
	if (stamp->pg_major != PG_VERSION_NUM / 100 || stamp->format != format)
		return "file was written by an incompatible version";
	return NULL;
}

/*
 * pfg_persist_begin_write
 *		Open the temporary file to write; NULL on failure (the caller passes
 *		it on to pfg_persist_end_write, which reports).
 */
FILE *
pfg_persist_begin_write(const char *tmpfile)
{
	return AllocateFile(tmpfile, PG_BINARY_W);
}

/*
 * pfg_persist_end_write
 *		End the writing of a stats file: when every write succeeded ("ok"),
 *		close "tmpfile" and durably rename it to "path"; otherwise, or if
 *		closing fails, report at LOG (errno is the failed call's) and remove
 *		the temporary file.  "file" may be NULL when it could not be opened.
 */
void
pfg_persist_end_write(FILE *file, const char *tmpfile, const char *path,
					  bool ok)
{
	if (ok && file != NULL)
	{
		if (FreeFile(file) == 0)
		{
			(void) durable_rename(tmpfile, path, LOG);
			return;
		}
		file = NULL;
	}
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("perfguard: could not write file \"%s\": %m", tmpfile)));
	if (file)
		FreeFile(file);
	unlink(tmpfile);
}

/*
 * pfg_persist_begin_read
 *		Open a saved file; NULL when there is none (silently) or it cannot be
 *		read (with a WARNING).
 */
FILE *
pfg_persist_begin_read(const char *path)
{
	FILE	   *file = AllocateFile(path, PG_BINARY_R);

	if (file == NULL && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("perfguard: could not read file \"%s\": %m", path)));
	return file;
}

/*
 * pfg_persist_check_end
 *		"file has trailing data" when anything follows what was read, else
 *		NULL.
 */
const char *
pfg_persist_check_end(FILE *file)
{
	char		extra;

	if (fread(&extra, 1, 1, file) != 0)
		return "file has trailing data";
	return NULL;
}

/*
 * pfg_persist_end_read
 *		Close and unlink a file that was read; "why" (when not NULL) is why
 *		its contents were ignored, reported as a WARNING about "what" (the
 *		kind of file: "stats file", "advice file").
 */
void
pfg_persist_end_read(FILE *file, const char *path, const char *what,
					 const char *why)
{
	if (why != NULL)
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("perfguard: ignoring %s \"%s\": %s",
						what, path, why)));
	FreeFile(file);
	unlink(path);
}
