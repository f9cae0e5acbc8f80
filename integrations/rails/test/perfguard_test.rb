# frozen_string_literal: true

# End-to-end tests of the perfguard ActiveRecord integration, against a live
# cluster with perfguard preloaded (run_e2e.sh exports PGHOST, PGPORT, PGUSER,
# PGDATABASE).  ActiveRecord uses prepared statements (the extended query
# protocol) by default; the tests check that they are in use.

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "minitest/autorun"
require "active_record"
require "perfguard"
require "perfguard/minitest"

Perfguard.install!
ActiveRecord::Base.establish_connection(
  adapter: "postgresql", host: ENV.fetch("PGHOST"), port: ENV.fetch("PGPORT").to_i,
  username: ENV.fetch("PGUSER"), database: ENV.fetch("PGDATABASE")
)
ActiveRecord::Base.logger = nil

class Author < ActiveRecord::Base
  has_many :posts
end

class Post < ActiveRecord::Base
  belongs_to :author
end

# A schema as Rails 6.1 migrations write it: t.references creates the column
# and its index but no foreign-key constraint, so perfguard must infer the
# relations from the column names (issue 17).
class User < ActiveRecord::Base
  has_many :stories
end

class Story < ActiveRecord::Base
  belongs_to :user
  has_and_belongs_to_many :tags
  has_many :comments
end

class Tag < ActiveRecord::Base
  has_and_belongs_to_many :stories
end

class Comment < ActiveRecord::Base
  belongs_to :story
end

conn = ActiveRecord::Base.connection
conn.execute(<<~SQL)
  DROP TABLE IF EXISTS posts, authors;
  CREATE TABLE authors (id bigserial PRIMARY KEY, name text NOT NULL);
  CREATE TABLE posts (id bigserial PRIMARY KEY,
                      author_id bigint NOT NULL REFERENCES authors (id),
                      title text NOT NULL);
  INSERT INTO authors (name) SELECT 'Author ' || g FROM generate_series(1, 10) g;
  INSERT INTO posts (author_id, title) SELECT (g - 1) % 10 + 1, 'Post ' || g FROM generate_series(1, 30) g;
  ANALYZE authors, posts;
SQL

conn.execute("DROP TABLE IF EXISTS comments, stories_tags, tags, stories, users")
ActiveRecord::Migration.verbose = false
ActiveRecord::Schema.define do
  create_table :users do |t|
    t.string :name, null: false
  end
  create_table :stories do |t|
    t.string :title, null: false
    t.references :user, null: false
  end
  create_table :tags do |t|
    t.string :name, null: false
  end
  create_join_table :stories, :tags do |t|
    t.index :story_id
  end
  create_table :comments do |t|
    t.references :story, null: false
    t.text :body, null: false
  end
end
conn.execute(<<~SQL)
  INSERT INTO users (name) SELECT 'User ' || g FROM generate_series(1, 6) g;
  INSERT INTO stories (title, user_id) SELECT 'Story ' || g, (g - 1) % 6 + 1 FROM generate_series(1, 12) g;
  INSERT INTO tags (name) SELECT 'tag ' || g FROM generate_series(1, 4) g;
  INSERT INTO stories_tags (story_id, tag_id) SELECT g, (g - 1) % 4 + 1 FROM generate_series(1, 12) g;
  INSERT INTO comments (story_id, body) SELECT (g - 1) % 12 + 1, 'Comment ' || g FROM generate_series(1, 36) g;
  ANALYZE users, stories, tags, stories_tags, comments;
SQL

# Load the models' columns now: ActiveRecord reads pg_attribute the first time
# a model is used, and that catalog query would otherwise sit between a loop's
# parent query and its children in whichever test runs first.
[Author, Post, User, Story, Tag, Comment].each { |model| model.first }
Post.includes(:author).first
Author.includes(:posts).first
Story.includes(:user, :tags, :comments).first

# A second pool, configured as behind pgbouncer in transaction mode
# (prepared_statements: false), with a short request_gap so that its
# requests end quickly.
class Unprepared < ActiveRecord::Base
  self.abstract_class = true
end
Unprepared.establish_connection(
  adapter: "postgresql", host: ENV.fetch("PGHOST"), port: ENV.fetch("PGPORT").to_i,
  username: ENV.fetch("PGUSER"), database: ENV.fetch("PGDATABASE"),
  prepared_statements: false, variables: { "perfguard.request_gap" => "100ms" }
)

class UAuthor < Unprepared
  self.table_name = "authors"
end

class UPost < Unprepared
  self.table_name = "posts"
  belongs_to :author, class_name: "UAuthor"
end
[UAuthor, UPost].each { |model| model.first }
UPost.includes(:author).first

# Records the statements a raw PG::Connection is sent, as the server gets them.
module RecordStatements
  attr_accessor :recorded

  %i[async_exec exec exec_params prepare].each do |meth|
    define_method(meth) do |*args, **kw, &blk|
      recorded << args[meth == :prepare ? 1 : 0] if recorded
      super(*args, **kw, &blk)
    end
  end
end

class PerfguardActiveRecordTest < Minitest::Test
  include Perfguard::Assertions

  # these tests read what perfguard records of the loops, bad ones included:
  # no collecting guard, no test tag
  def perfguard_collect
    []
  end

  def perfguard_tag_test?
    false
  end

  def conn
    ActiveRecord::Base.connection
  end

  def setup
    conn.execute("SELECT perfguard.reset()")
  end

  # the page without includes: one query per post for its author
  def titles_without_includes
    Post.order(:id).map { |p| "#{p.title} by #{p.author.name}" }
  end

  def titles_with_includes
    Post.includes(:author).order(:id).map { |p| "#{p.title} by #{p.author.name}" }
  end

  # a statement with other tags closes the previous tagged scope
  def close_scope
    Perfguard.tagged(route: "/separator") { conn.select_value("SELECT 1") }
  end

  def n_plus_one_rows
    conn.select_rows("SELECT route, query, suggestion FROM perfguard.n_plus_one ORDER BY route")
  end

  def test_format_comment
    assert_equal "/*action='index',controller='posts',framework='rails',route='%2Fposts%2F%3Aid'*/",
                 Perfguard.format_comment(route: "/posts/:id", controller: "posts", action: "index",
                                          framework: "rails", traceparent: nil)
  end

  def test_loop_without_includes_is_flagged_with_includes_suggestion
    Perfguard.tagged(route: "/posts", controller: "posts", action: "index") do
      assert_equal 30, titles_without_includes.size
    end
    close_scope
    rows = n_plus_one_rows
    row = rows.find { |r| r[0] == "/posts" }
    refute_nil row, "no N+1 on /posts in #{rows.inspect}"
    assert_includes row[1], 'FROM "authors" WHERE "authors"."id" = $1'
    assert_includes row[2], "includes(:author)"
  end

  def test_has_many_loop_is_flagged
    Perfguard.tagged(route: "/authors", controller: "authors", action: "index") do
      Author.order(:id).each { |a| a.posts.to_a }
    end
    close_scope
    row = n_plus_one_rows.find { |r| r[0] == "/authors" }
    refute_nil row
    assert_includes row[2], "includes(:posts)"
  end

  def test_includes_version_is_clean
    Perfguard.tagged(route: "/posts-includes", controller: "posts", action: "index") do
      assert_equal 30, titles_with_includes.size
    end
    close_scope
    assert_empty n_plus_one_rows.select { |r| r[0] == "/posts-includes" }
    routes = conn.select_values("SELECT route FROM perfguard.requests")
    assert_includes routes, "/posts-includes"
  end

  def test_guard_raises_statement_invalid_with_pf001
    conn.execute("SELECT perfguard.begin_request('guard')")
    conn.execute("SET perfguard.on_n_plus_one = 'error'")
    error = assert_raises(ActiveRecord::StatementInvalid) { titles_without_includes }
    assert_equal "PF001", error.cause.result.error_field(PG::Result::PG_DIAG_SQLSTATE)
    assert_includes error.message, "N+1 query"
  ensure
    conn.execute("RESET perfguard.on_n_plus_one")
    conn.select_all("SELECT * FROM perfguard.end_request()")
  end

  def test_assert_no_n_plus_one_fails_on_the_loop
    failure = assert_raises(Minitest::Assertion) do
      assert_no_n_plus_one { titles_without_includes }
    end
    assert_includes failure.message, "PF001"
    assert_includes failure.message, 'FROM "authors" WHERE "authors"."id" = $1'
    assert_includes failure.message, "Rails: .includes(:author)"
    # the guard is off again and the connection works
    assert_equal "off", conn.select_value("SELECT current_setting('perfguard.on_n_plus_one')")
    assert_equal 30, titles_without_includes.size
  end

  def test_assert_no_n_plus_one_passes_with_includes
    titles = assert_no_n_plus_one { titles_with_includes }
    assert_equal 30, titles.size
  end

  def test_assert_inside_a_transaction
    conn.transaction do
      assert_raises(Minitest::Assertion) { assert_no_n_plus_one { titles_without_includes } }
      # the savepoint was rolled back, the transaction goes on
      assert_equal 30, Post.count
      raise ActiveRecord::Rollback
    end
  end

  def test_assert_max_queries
    assert_max_queries(2) { titles_with_includes }
    failure = assert_raises(Minitest::Assertion) do
      assert_max_queries(5) { titles_without_includes }
    end
    assert_includes failure.message, "PF003"
  end

  # issue 17: a list view over three relations, without foreign keys, is one
  # finding whose fix names all three, in Rails' vocabulary, inferred
  def test_three_relations_without_foreign_keys_one_card_one_fix
    assert_empty conn.select_values(<<~SQL), "t.references made a foreign key"
      SELECT conname FROM pg_constraint
       WHERE contype = 'f' AND conrelid IN ('stories'::regclass, 'comments'::regclass, 'stories_tags'::regclass)
    SQL
    Perfguard.tagged(route: "/stories", controller: "stories", action: "index") do
      Story.order(:id).each do |story|
        story.user.name
        story.tags.map(&:name)
        story.comments.map(&:body)
      end
    end
    close_scope
    cards = conn.select_all(<<~SQL).to_a
      SELECT category, framework, inferred, suggestion, database = current_database() AS this_db,
             cardinality(queryids) AS statements
        FROM perfguard.findings WHERE route = '/stories'
    SQL
    assert_equal 1, cards.size, "one card for /stories: #{cards.inspect}"
    card = cards.first
    assert_equal "n_plus_one_sequence", card["category"]
    assert_equal 3, card["statements"]
    assert_equal "rails", card["framework"]
    assert card["inferred"], "the relations are inferred from column names"
    assert card["this_db"]
    assert_includes card["suggestion"], "Rails: .includes(:user, :tags, :comments)"
    assert_includes card["suggestion"], "inferred from column names"
    refute_includes card["suggestion"], "Django"
    refute_includes card["suggestion"], "SQLAlchemy"
  end

  def test_three_relations_with_includes_are_clean
    Perfguard.tagged(route: "/stories-includes", controller: "stories", action: "index") do
      Story.includes(:user, :tags, :comments).order(:id).each do |story|
        story.user.name
        story.tags.map(&:name)
        story.comments.map(&:body)
      end
    end
    close_scope
    assert_empty conn.select_values("SELECT category FROM perfguard.findings WHERE route = '/stories-includes'")
  end

  def recorded_on(connection)
    raw = connection.raw_connection
    raw.singleton_class.prepend(RecordStatements) unless raw.singleton_class < RecordStatements
    raw.recorded = []
    yield
    raw.recorded
  ensure
    raw.recorded = nil
  end

  def tag(sql, key)
    sql[/#{key}='([^']*)'/, 1]
  end

  def test_tagged_adds_one_request_id_per_request
    first = Perfguard.tagged(route: "/a") { Perfguard.tagged(action: "inner") { Perfguard.tags } }
    second = Perfguard.tagged(route: "/a") { Perfguard.tags }
    assert_match(/\A\h{32}\z/, first[:request_id])
    assert_equal "inner", first[:action]
    refute_equal first[:request_id], second[:request_id]
    assert_equal "req-1", Perfguard.tagged(route: "/a", request_id: "req-1") { Perfguard.tags[:request_id] }
    none = Perfguard.tagged(route: "/a", request_id: nil) { Perfguard.tags }
    assert_nil none[:request_id]
    assert_equal "/*framework='rails',route='%2Fa'*/", Perfguard.format_comment(none)
  end

  def test_opentelemetry_span_gives_the_traceparent
    refute defined?(::OpenTelemetry), "the test defines a stand-in for opentelemetry-api"
    flags = Struct.new(:sampled?).new(true)
    context = Struct.new(:valid?, :hex_trace_id, :hex_span_id, :trace_flags)
                    .new(true, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", flags)
    span = Struct.new(:context).new(context)
    trace = Module.new
    trace.define_singleton_method(:current_span) { span }
    Object.const_set(:OpenTelemetry, Module.new)
    ::OpenTelemetry.const_set(:Trace, trace)
    tags = Perfguard.tagged(route: "/a") { Perfguard.tags }
    assert_equal "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tags[:traceparent]
    assert_nil tags[:request_id]
    invalid = Struct.new(:context).new(Struct.new(:valid?).new(false))
    trace.define_singleton_method(:current_span) { invalid }
    assert_match(/\A\h{32}\z/, Perfguard.tagged(route: "/a") { Perfguard.tags[:request_id] })
  ensure
    Object.send(:remove_const, :OpenTelemetry) if defined?(::OpenTelemetry)
  end

  def test_unprepared_connection_sends_the_request_id
    connection = Unprepared.connection
    ids = 2.times.map do
      sql = recorded_on(connection) do
        Perfguard.tagged(route: "/u-posts") { UPost.order(:id).map { |p| p.author.name } }
      end
      assert_equal 31, sql.size
      got = sql.map { |s| tag(s, "request_id") }.uniq
      assert_equal 1, got.size, sql.first(3).inspect
      got.first
    end
    assert_match(/\A\h{32}\z/, ids[0])
    refute_equal ids[0], ids[1]
  end

  def test_prepared_connection_leaves_the_id_out
    sql = recorded_on(conn) do
      Perfguard.tagged(route: "/p-posts") { Post.order(:id).map { |p| p.author.name } }
    end
    assert_operator sql.size, :>, 1
    sql.each do |s|
      assert_nil tag(s, "request_id"), s
      assert_equal "%2Fp-posts", tag(s, "route"), s
    end
    # an id given to tagged is sent as given
    sql = recorded_on(conn) { Perfguard.tagged(route: "/p-posts", request_id: "given") { Post.first } }
    assert_equal "given", tag(sql.last, "request_id")
    Perfguard.request_ids = true
    sql = recorded_on(conn) { Perfguard.tagged(route: "/p-posts") { Post.first } }
    assert_match(/\A\h{32}\z/, tag(sql.last, "request_id"))
  ensure
    Perfguard.request_ids = nil
  end

  def test_back_to_back_requests_on_one_connection_stay_apart
    # issue 15: ten requests of a clean page back to back on one pooled
    # connection are ten requests with no finding, not one with duplicates
    10.times do
      Perfguard.tagged(route: "/page", controller: "pages", action: "show") do
        UAuthor.count
        UPost.includes(:author).order(:id).limit(5).to_a
      end
    end
    sleep 0.5 # request_gap is 100ms on this connection
    assert_equal [[10, 30, 3]],
                 conn.select_rows("SELECT requests, queries, max_queries FROM perfguard.requests WHERE route = '/page'")
    assert_empty conn.select_rows("SELECT category FROM perfguard.findings WHERE route = '/page'")
  end

  def test_assert_inside_a_tagged_request
    # the guard's begin_request() carries no id: no one-query request of the route
    Perfguard.request_ids = true
    Perfguard.tagged(route: "/guarded") do
      assert_no_n_plus_one(label: "guarded") { titles_with_includes }
    end
    assert_empty conn.select_rows("SELECT requests FROM perfguard.requests WHERE route = '/guarded'")
    assert_equal [[1, 2]], conn.select_rows("SELECT requests, queries FROM perfguard.requests WHERE route = 'guarded'")
  ensure
    Perfguard.request_ids = nil
  end

  def test_prepared_statements_in_use
    titles_with_includes
    assert conn.prepared_statements
    assert_operator conn.select_value("SELECT count(*) FROM pg_prepared_statements").to_i, :>, 0
  end
end

# Tests of the collecting guard, some of which fail on purpose: not run by
# autorun (removed from the runnables), but one by one by
# PerfguardCollectingTest, which checks how each one ended.
class CollectingCases < Minitest::Test
  include Perfguard::Assertions

  # one action with three N+1s: each post's author, each author's posts and
  # each author's post count
  def three_n_plus_ones
    Perfguard.tagged(route: "/three", controller: "posts", action: "three") do
      Post.order(:id).each { |p| p.author.name }
      Author.order(:id).each { |a| a.posts.to_a }
      Author.order(:id).each { |a| a.posts.count }
    end
  end

  def test_three_n_plus_ones
    three_n_plus_ones
  end

  def test_three_fixed
    Perfguard.tagged(route: "/three-fixed", controller: "posts", action: "three") do
      Post.includes(:author).order(:id).each { |p| p.author.name }
      counts = Post.group(:author_id).count
      Author.includes(:posts).order(:id).each { |a| [a.posts.to_a, counts.fetch(a.id, 0)] }
    end
  end

  def test_n_plus_one_in_the_test_body
    Post.order(:id).each { |p| p.author.name }
  end

  def test_block_assertion_inside
    # an assertion in the test keeps what the test collected before it
    Perfguard.tagged(route: "/before") { Post.order(:id).each { |p| p.author.name } }
    assert_no_n_plus_one { Post.includes(:author).order(:id).to_a }
  end

  def test_fails_on_its_own
    Perfguard.tagged(route: "/own") { Post.order(:id).each { |p| p.author.name } }
    flunk "failed on its own"
  end

  def test_after_a_failure
    assert_equal 0, ActiveRecord::Base.connection.select_value("SELECT count(*) FROM perfguard.collected()").to_i
  end

  def test_inside_a_transaction
    ActiveRecord::Base.transaction do
      three_n_plus_ones
      raise ActiveRecord::Rollback
    end
  end
end

class CollectingDuplicates < CollectingCases
  def perfguard_collect
    %i[n_plus_one duplicate]
  end

  def perfguard_max_queries
    5
  end

  def test_duplicates_and_too_many
    Perfguard.tagged(route: "/dup") { 6.times { Author.order(:id).first } }
  end
end

class NotCollecting < CollectingCases
  def perfguard_collect
    []
  end
end
[CollectingCases, CollectingDuplicates, NotCollecting].each { |k| Minitest::Runnable.runnables.delete(k) }

class PerfguardCollectingTest < Minitest::Test
  def conn
    ActiveRecord::Base.connection
  end

  def setup
    conn.execute("SELECT perfguard.reset()")
  end

  # the result of one test of CollectingCases (or a subclass)
  def run_case(klass, name)
    result = klass.new(name).run
    result.failures.each { |f| puts "--- #{klass}##{name}: #{f.class}\n#{f.message}" }
    result
  end

  # the message of the one failure of a result ("" when none, several, or an error)
  def failure_of(result)
    failures = result.failures
    return "" unless failures.size == 1 && !failures.first.is_a?(Minitest::UnexpectedError)
    failures.first.message
  end

  def finding(message, number)
    message[/^#{number}\. N\+1 query in request "(.*)": ran (\d+) times with \d+ different parameter sets: (.*)\n   parent: (.*)\n   fix: (.*)$/]
    Regexp.last_match&.captures
  end

  def test_three_n_plus_ones_fail_once_listing_all_three
    message = failure_of(run_case(CollectingCases, "test_three_n_plus_ones"))
    assert_includes message, "PF004 perfguard: 3 findings\n"
    [
      ['FROM "authors" WHERE "authors"."id" = $1', "includes(:author)"],
      ['FROM "posts" WHERE "posts"."author_id" = $1', "includes(:posts)"],
      ['SELECT COUNT(*) FROM "posts" WHERE "posts"."author_id" = $1', "Rails:"]
    ].each_with_index do |(statement, fix), i|
      route, count, query, _parent, suggestion = finding(message, i + 1)
      refute_nil route, "finding #{i + 1} in:\n#{message}"
      assert_equal "[test] /three", route
      assert_operator count.to_i, :>=, 10
      assert_includes query, statement
      assert_includes suggestion, fix
    end
    refute_match(/^4\. /, message.split("Queries:").first)
    # the queries, as assert_queries lists them: 1 + 30 + 1 + 10 + 1 + 10
    assert_includes message, "\nQueries:\n1. SELECT \"posts\".* FROM \"posts\" ORDER BY"
    assert_match(/^53\. SELECT COUNT\(\*\) FROM "posts"/, message)
    refute_match(/^54\. /, message)
    refute_includes message, "perfguard='test'"
  end

  def test_the_fixed_twin_passes
    result = run_case(CollectingCases, "test_three_fixed")
    assert result.passed?
  end

  def test_test_traffic_is_kept_out_of_the_findings
    run_case(CollectingCases, "test_three_n_plus_ones")
    assert_equal 0, conn.select_value("SELECT count(*) FROM perfguard.findings WHERE route LIKE '%/three'").to_i
    assert_equal 0, conn.select_value("SELECT count(*) FROM perfguard.n_plus_one WHERE route LIKE '%/three'").to_i
    assert_equal [["[test] /three", 1]],
                 conn.select_rows("SELECT route, requests FROM perfguard.requests WHERE route LIKE '%/three'")
    conn.execute("SET perfguard.include_test = on")
    assert_equal 3, conn.select_value("SELECT count(*) FROM perfguard.n_plus_one WHERE route = '[test] /three'").to_i
    # one card per loop (issue 17): the three N+1s show, folded into the view's cards
    categories = conn.select_values("SELECT DISTINCT category FROM perfguard.findings WHERE route = '[test] /three'")
    assert categories.any? { |c| c.start_with?("n_plus_one") }, categories.inspect
  ensure
    conn.execute("RESET perfguard.include_test")
  end

  def test_settings_and_tags_are_restored
    run_case(CollectingCases, "test_three_n_plus_ones")
    assert_equal "off", conn.select_value("SHOW perfguard.on_n_plus_one")
    assert_equal 0, conn.select_value("SELECT count(*) FROM perfguard.collected()").to_i
    assert_equal({ framework: "rails" }, Perfguard.tags)
  end

  def test_n_plus_one_in_the_test_body
    message = failure_of(run_case(CollectingCases, "test_n_plus_one_in_the_test_body"))
    assert_includes message, "PF004 perfguard: 1 finding\n"
    assert_equal "[test] CollectingCases#test_n_plus_one_in_the_test_body", finding(message, 1)&.first
  end

  def test_block_assertion_keeps_the_collected_findings
    message = failure_of(run_case(CollectingCases, "test_block_assertion_inside"))
    assert_includes message, "PF004 perfguard: 1 finding\n"
    assert_equal "[test] /before", finding(message, 1)&.first
  end

  def test_a_test_that_fails_on_its_own_reports_only_that
    message = failure_of(run_case(CollectingCases, "test_fails_on_its_own"))
    assert_equal "failed on its own", message
    assert run_case(CollectingCases, "test_after_a_failure").passed?
  end

  def test_inside_a_transaction
    message = failure_of(run_case(CollectingCases, "test_inside_a_transaction"))
    assert_includes message, "PF004 perfguard: 3 findings\n"
  end

  def test_duplicates_and_too_many_queries_when_asked
    message = failure_of(run_case(CollectingDuplicates, "test_duplicates_and_too_many"))
    assert_includes message, "PF004 perfguard: 2 findings\n"
    assert_match(/^1\. duplicate query in request "\[test\] \/dup": the same parameters ran 6 times/, message)
    assert_includes message, "\n2. request \"[test] /dup\" ran 6 queries"
    assert run_case(CollectingDuplicates, "test_three_fixed").passed?
  end

  def test_not_collecting
    assert run_case(NotCollecting, "test_three_n_plus_ones").passed?
  end
end
