#!/bin/bash
#
# integrations/readme/run_e2e.sh: every code example in README.md runs (or
# at least parses), so the README cannot drift from the code.
#
# extract_blocks.py lists the fenced blocks of README.md; each one is one
# check, by its language:
#   sql                 run with psql (ON_ERROR_STOP) in a throwaway cluster
#                       that preloads perfguard.  The blocks of one "## "
#                       section run in README order in one database of their
#                       own (so a block may use the tables an earlier block
#                       of its section created); that database has the
#                       extension already unless a block of the section
#                       runs CREATE EXTENSION itself.
#   sh, bash, shell     bash -n (syntax): they install packages, restart
#                       servers or run the test suite, so they are not run
#   python              parsed (ast.parse)
#   ruby                ruby -c
#   text                output, config files, formats: not checked, not counted
# A block without a language fails (label output "text"), and so does a
# language with no checker here.  A block right after
#   <!-- readme-test: skip: <reason> -->
# is not checked (the reason is printed); use it sparingly.
#
# Then the Django quickstart is followed alone in a fresh `django-admin
# startproject` (django_quickstart below): its test, on a view with three
# N+1s, must fail once listing all three, and pass once the view is fixed.
#
# As root it re-runs itself as pfgtest.  Last line: "N passed, M failed".

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readme=${README:-$here/../../README.md}
source "$here/../lib/cluster.sh"
pfg_as_unprivileged "$here/run_e2e.sh" "$@"

pfg_start_cluster
blocks=$PFG_TMP/blocks
"$PYTHON" "$here/extract_blocks.py" "$readme" "$blocks" >"$PFG_TMP/manifest" ||
	{ echo "extract_blocks.py failed"; echo "0 passed, 1 failed"; exit 1; }
check "README.md has SQL and shell examples to check" \
	bash -c "cut -f2 '$PFG_TMP/manifest' | grep -qx sql && cut -f2 '$PFG_TMP/manifest' | grep -qEx 'sh|bash|shell'"

# db_for SECTION: sets db to the database of SECTION, created on first use
# (not in a subshell: section_db must keep it)
declare -A section_db=()
db_for()
{
	local section=$1
	if [ -z "${section_db[$section]:-}" ]; then
		db=readme_$((${#section_db[@]} + 1))
		pfg_psql -c "CREATE DATABASE $db" >/dev/null
		# the section creates the extension itself, or it gets it here
		if ! awk -F'\t' -v s="$section" '$2 == "sql" && $4 == s && $6 == "" { print $5 }' \
			"$PFG_TMP/manifest" | xargs cat | grep -qiE 'create[[:space:]]+extension[^;]*perfguard'; then
			pfg_psql -d "$db" -c 'CREATE EXTENSION perfguard' >/dev/null
		fi
		section_db[$section]=$db
	fi
	db=${section_db[$section]}
}

# show FILE: a failed block and what its check printed
show()
{
	sed 's/^/    | /' "$1"
	sed 's/^/    > /' "$PFG_TMP/out"
}

# run_check NAME FILE CMD...: CMD is the check of the block in FILE
run_check()
{
	local name=$1 file=$2
	shift 2
	if "$@" >"$PFG_TMP/out" 2>&1; then
		check "$name" true
	else
		check "$name" false
		show "$file"
	fi
}

while IFS=$'\t' read -r index lang line section file reason; do
	where="README.md:$line ($section)"
	if [ -n "$reason" ] && [ "$lang" != bad-marker ] && [ "$lang" != unclosed ]; then
		echo "# skipped: $lang block $index at $where: $reason"
		continue
	fi
	case $lang in
		sql)
			db_for "$section"
			run_check "$where: the SQL block runs" "$file" \
				pfg_psql -d "$db" -f "$file" -o /dev/null
			;;
		sh | bash | shell)
			run_check "$where: the $lang block parses (bash -n)" "$file" bash -n "$file"
			;;
		python)
			run_check "$where: the python block parses" "$file" "$PYTHON" -c \
				'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$file"
			;;
		ruby)
			run_check "$where: the ruby block parses (ruby -c)" "$file" ruby -c "$file"
			;;
		text)
			;;
		unlabelled)
			check "$where: the block has a language (sql, sh, python, ruby; text for output)" false
			sed 's/^/    | /' "$file"
			;;
		bad-marker | unclosed)
			check "$where: $reason" false
			;;
		*)
			check "$where: a checker for \`\`\`$lang blocks (or label it text)" false
			;;
	esac
done <"$PFG_TMP/manifest"

# The Django quickstart, followed alone: a fresh `django-admin startproject`
# with an app whose /books/ view has three N+1s (each book's author and tags,
# each author's book count), the README's settings lines and test appended as
# they are (the integration comes from this tree, not /usr/share/perfguard,
# and DATABASES points at the throwaway cluster, as the app's own server
# would).  `manage.py test` must fail once, the collecting guard listing the
# three N+1s with their fixes and the queries, then pass once the view uses
# select_related, prefetch_related and annotate.
django_quickstart()
{
	local block proj=$PFG_TMP/quickstart rc name
	block=$(awk -F'\t' '$2 == "python" && $4 ~ /^Quickstart/ { print $5 }' "$PFG_TMP/manifest" |
		xargs grep -l perfguard_django | head -n 1)
	if [ -z "$block" ] || ! grep -q '^# tests.py' "$block"; then
		check "the README quickstart has a Django block with settings and a '# tests.py' part" false
		return
	fi
	mkdir -p "$proj"
	if ! (cd "$proj" && "$PYTHON" -m django startproject mysite . &&
		"$PYTHON" manage.py startapp books) >"$PFG_TMP/out" 2>&1; then
		check "django-admin startproject" false
		cat "$PFG_TMP/out"
		return
	fi
	pfg_psql -c 'CREATE DATABASE app' >/dev/null
	cat >>"$proj/mysite/settings.py" <<-END
		
		# the app's own PostgreSQL server (here: the throwaway cluster)
		DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'app',
		                         'HOST': '$PGHOST', 'PORT': '$PGPORT', 'USER': '$PGUSER'}}
		INSTALLED_APPS += ['books']
		
		# --- from README.md ---
	END
	sed '/^# tests.py/,$d' "$block" >>"$proj/mysite/settings.py"
	sed -n '/^# tests.py/,$p' "$block" >"$proj/books/tests.py"
	"$PYTHON" - "$proj" <<-'END'
		import sys
		proj = sys.argv[1]
		files = {
		    'books/models.py': """from django.db import models


		class Author(models.Model):
		    name = models.CharField(max_length=100)


		class Tag(models.Model):
		    name = models.CharField(max_length=50)


		class Book(models.Model):
		    title = models.CharField(max_length=200)
		    author = models.ForeignKey(Author, on_delete=models.CASCADE)
		    tags = models.ManyToManyField(Tag)
		""",
		    'books/views.py': """from django.db.models import Count
		from django.http import HttpResponse

		from .models import Author, Book


		def books(request):
		    # one query for the books, then per book one for its author and one for its
		    # tags; one for the authors, then per author one for the count of books
		    books = Book.objects.order_by('id')
		    authors = Author.objects.order_by('id')
		    lines = ['%s by %s [%s]' % (b.title, b.author.name, ', '.join(t.name for t in b.tags.all()))
		             for b in books]
		    lines += ['%s: %d books' % (a.name, a.book_set.count()) for a in authors]
		    return HttpResponse(' / '.join(lines))
		""",
		    'mysite/urls.py': """from django.urls import path

		from books.views import books

		urlpatterns = [path('books/', books)]
		""",
		}
		for name, text in files.items():
		    with open('%s/%s' % (proj, name), 'w') as f:
		        f.write(text)
	END
	if ! (cd "$proj" && PYTHONPATH="$here/../django" "$PYTHON" manage.py makemigrations books) >"$PFG_TMP/out" 2>&1; then
		check "makemigrations" false
		cat "$PFG_TMP/out"
		return
	fi
	# the data the test's request reads: 10 authors, 30 books
	cat >"$proj/books/migrations/0002_seed.py" <<-'END'
		from django.db import migrations


		def seed(apps, schema_editor):
		    Author = apps.get_model('books', 'Author')
		    Book = apps.get_model('books', 'Book')
		    Tag = apps.get_model('books', 'Tag')
		    authors = [Author.objects.create(name='Author %d' % i) for i in range(10)]
		    tags = [Tag.objects.create(name='tag %d' % i) for i in range(3)]
		    for i in range(30):
		        Book.objects.create(title='Book %d' % i, author=authors[i % 10]).tags.add(tags[i % 3])


		class Migration(migrations.Migration):
		    dependencies = [('books', '0001_initial')]
		    operations = [migrations.RunPython(seed)]
	END
	(cd "$proj" && PYTHONPATH="$here/../django" "$PYTHON" manage.py test books) \
		>"$PFG_TMP/quickstart1.out" 2>&1
	rc=$?
	name="the Django quickstart in a fresh startproject: the test of a view with three N+1s fails once"
	out=$PFG_TMP/quickstart1.out
	if [ $rc -ne 0 ] && [ "$(grep -c '^FAIL: ' "$out")/$(grep -c '^ERROR: ' "$out")" = 1/0 ] &&
		grep -q '^FAIL: test_list' "$out" && grep -q '^FAILED (failures=1)$' "$out"; then
		check "$name" true
		# what the developer sees, up to the captured queries
		sed -n '/^FAIL: test_list/,/^Captured queries were:/p' "$out" | sed 's/^/    | /'
	else
		check "$name" false
		cat "$out"
	fi
	# the failure lists the three N+1s, each with its statement, count,
	# parent and fix, then the queries (1 + 2 x 30 + 1 + 10)
	check "... listing all three N+1s with their fixes, then the captured queries" \
		"$PYTHON" - "$out" <<-'END'
		import re, sys
		text = open(sys.argv[1]).read()
		expected = [
		    ('FROM "books_author" WHERE "books_author"."id" = $1', "select_related('author')"),
		    ('INNER JOIN "books_book_tags"', "prefetch_related('tags')"),
		    ('SELECT COUNT(*) AS "__count" FROM "books_book"', "annotate(book_count=Count('book'))"),
		]
		ok = 'AssertionError: PF004 perfguard: 3 findings\n' in text
		for number, (statement, fix) in enumerate(expected, start=1):
		    m = re.search(r'^%d\. N\+1 query in request "\[test\] books/": ran (\d+) times with \d+ '
		                  r'different parameter sets: (.*)\n   parent: (.*)\n   fix: (.*)$' % number, text, re.M)
		    ok = ok and m is not None and int(m.group(1)) >= 10 and statement in m.group(2) \
		        and fix in m.group(4)
		queries = text.split('Captured queries were:\n', 1)[-1]
		ok = ok and not re.search(r'^4\. N\+1', text, re.M) and \
		    re.search(r'^72\. SELECT COUNT', queries, re.M) and not re.search(r'^73\. ', queries, re.M)
		sys.exit(0 if ok else 1)
	END
	sed -i -e "s/Book.objects.order_by('id')/Book.objects.select_related('author').prefetch_related('tags').order_by('id')/" \
		-e "s/Author.objects.order_by('id')/Author.objects.annotate(books=Count('book')).order_by('id')/" \
		-e "s/a.book_set.count()/a.books/" "$proj/books/views.py"
	(cd "$proj" && PYTHONPATH="$here/../django" "$PYTHON" manage.py test books) \
		>"$PFG_TMP/quickstart2.out" 2>&1
	rc=$?
	name="... and passes once the view uses select_related, prefetch_related and annotate"
	if [ $rc -eq 0 ] && grep -q '^OK' "$PFG_TMP/quickstart2.out"; then
		check "$name" true
	else
		check "$name" false
		cat "$PFG_TMP/quickstart2.out"
	fi
}
django_quickstart
pfg_finish
