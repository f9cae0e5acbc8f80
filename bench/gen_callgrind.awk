# bench/gen_callgrind.awk
#
# Writes N statements, one per line, for `postgres --single` (each newline ends
# a statement there).  Usage:
#   awk -v n=20500 -v workload=simple -f gen_callgrind.awk
#
# workload=simple: SELECT v FROM t WHERE id = k, k cycling over 10,000 rows.
# workload=orm:    requests of 12 statements tagged with a sqlcommenter comment
#                  (a new traceparent per request): one join (post + author),
#                  a burst of 10 author lookups by id (the N+1), one INSERT.
#                  The output stops after exactly N statements.
# workload=tagged: the simple lookups, in requests of 10 tagged with a
#                  traceparent each (a request with an id: the shared path).
# workload=pooled: what one backend behind a transaction pooler sees: 4
#                  requests (each a traceparent: a join, 10 lookups by id) whose
#                  statements interleave round-robin, then the next 4.
BEGIN {
	if (n == "" || n + 0 <= 0) { print "n is required" > "/dev/stderr"; exit 2 }
	if (workload == "simple") {
		for (i = 0; i < n; i++)
			printf "SELECT v FROM t WHERE id = %d;\n", 1 + (i * 7919) % 10000
		exit 0
	}
	if (workload == "tagged") {
		for (i = 0; i < n; i++)
			printf "SELECT v FROM t WHERE id = %d /*route='lookup',traceparent='00-%032d-%016d-01'*/;\n", 1 + (i * 7919) % 10000, int(i / 10) + 1, i + 1
		exit 0
	}
	if (workload == "pooled") {
		emitted = 0
		for (g = 0; emitted < n; g++) {
			for (j = 0; j <= 10 && emitted < n; j++) {
				for (k = 0; k < 4 && emitted < n; k++) {
					r = g * 4 + k + 1
					tag = sprintf("/*route='pooled',traceparent='00-%032d-%016d-01'*/", r, j + 1)
					if (j == 0)
						printf "SELECT p.id, p.title, a.name FROM post p JOIN author a ON a.id = p.author_id WHERE p.author_id <= %d %s\n", 1 + r % 50, tag
					else
						printf "SELECT a.id, a.name FROM author a WHERE a.id = %d %s\n", 1 + (r * 31 + j * 97) % 1000, tag
					emitted++
				}
			}
		}
		exit 0
	}
	if (workload != "orm") { print "unknown workload " workload > "/dev/stderr"; exit 2 }
	emitted = 0
	for (r = 1; emitted < n; r++) {
		tag = sprintf("/*controller='posts',action='show',traceparent='00-%032d-%016d-01'*/", r, r)
		p = 1 + (r * 7919) % 10000
		line[0] = sprintf("SELECT p.id, p.title, a.name FROM post p JOIN author a ON a.id = p.author_id WHERE p.id = %d %s", p, tag)
		for (j = 1; j <= 10; j++)
			line[j] = sprintf("SELECT a.id, a.name FROM author a WHERE a.id = %d %s", 1 + (r * 31 + j * 97) % 1000, tag)
		line[11] = sprintf("INSERT INTO event (post_id, kind) VALUES (%d, 1) %s", p, tag)
		for (j = 0; j < 12 && emitted < n; j++) {
			print line[j]
			emitted++
		}
	}
}
