# frozen_string_literal: true

# Minitest support for perfguard's guards.
#
#   class PostsTest < ActiveSupport::TestCase   # or Minitest::Test
#     include Perfguard::Assertions
#
#     def test_index                      # every N+1 of the test fails it, once
#       get posts_path
#     end
#
#     def test_index_block
#       assert_no_n_plus_one { get posts_path }
#     end
#   end
#
# Every test.  Perfguard::Assertions sets perfguard's guards to 'collect' for
# each test method (after setup, before teardown: perfguard.on_n_plus_one;
# the guards perfguard_collect names), so the code runs to its end while
# perfguard keeps each finding, and tags the test's statements with
# perfguard='test' (their own route entry "[test] <route>", left out of
# perfguard.findings unless perfguard.include_test is on; route is the
# test's name outside Perfguard.tagged blocks, whose tags and request id
# stay).  Before teardown it calls perfguard.check_collected(): when
# anything was found, the test fails once, listing every finding with its
# statement, count, parent and fix, followed by the queries the test ran.
# Override in the test class:
#
#   def perfguard_collect; [:n_plus_one]; end   # also :duplicate, :too_many_queries; [] for none
#   def perfguard_max_queries; nil; end         # an Integer: also collect requests with more queries
#   def perfguard_tag_test?; true; end          # false: untagged, findings in the reports
#
# The assertions.  Each assertion opens an explicit perfguard scope on the connection
# (SELECT perfguard.begin_request(label)), sets the guard with SET
# (perfguard.on_n_plus_one / on_duplicate / on_too_many_queries = 'error' and
# perfguard.max_queries_per_request), runs the block, then restores the
# settings and calls perfguard.end_request().  The statement that crosses the
# threshold fails in the database with SQLSTATE PF001 (N+1), PF002
# (duplicate) or PF003 (too many queries): ActiveRecord raises
# ActiveRecord::StatementInvalid, which the assertion turns into a test
# failure carrying perfguard's message, the statement, its parent and the fix
# (e.g. "Rails: includes(:author)").  Inside an open transaction (transactional
# tests) the block runs in a savepoint, so a failure leaves the test's
# transaction usable.  An explicit scope lives on one server session: through
# a transaction pooler it holds only inside one transaction, so run the
# assertions on a direct connection (as test suites do).

require "perfguard"

module Perfguard
  SQLSTATES = %w[PF001 PF002 PF003].freeze
  COLLECTED_SQLSTATE = "PF004"

  # perfguard_collect's names and their settings
  GUARDS = { n_plus_one: "perfguard.on_n_plus_one", duplicate: "perfguard.on_duplicate",
             too_many_queries: "perfguard.on_too_many_queries" }.freeze
  MAX_QUERIES = "perfguard.max_queries_per_request"

  # DO blocks are utility statements: perfguard counts them toward no request
  CHECK_COLLECTED = "DO $$BEGIN PERFORM perfguard.check_collected(); END$$"
  FORGET_COLLECTED = "DO $$BEGIN PERFORM count(*) FROM perfguard.collected(); END$$"

  # at most this many captured queries in a failure message
  MAX_SHOWN_QUERIES = 1000
  TRAILING_COMMENT = %r{\s*/\*[^*]*'\*/\s*(;?)\s*\z}.freeze

  # The SQLSTATE of an ActiveRecord::StatementInvalid, or nil.
  def self.error_sqlstate(error)
    result = error.respond_to?(:cause) && error.cause.respond_to?(:result) ? error.cause.result : nil
    result&.error_field(PG::Result::PG_DIAG_SQLSTATE)
  end

  # perfguard.check_collected()'s error: the count, every finding, the hint.
  def self.describe_collected(error)
    result = error.cause.result
    [PG::Result::PG_DIAG_MESSAGE_DETAIL, PG::Result::PG_DIAG_MESSAGE_HINT]
      .map { |field| result.error_field(field) }.compact
      .unshift("#{COLLECTED_SQLSTATE} #{result.error_field(PG::Result::PG_DIAG_MESSAGE_PRIMARY)}")
      .join("\n")
  end

  # The captured queries, numbered (as Rails' assert_queries lists them).
  def self.describe_queries(queries)
    shown = queries.first(MAX_SHOWN_QUERIES).each_with_index.map do |sql, i|
      "#{i + 1}. #{sql.sub(TRAILING_COMMENT, '\\1')}"
    end
    shown << "... (#{queries.size - MAX_SHOWN_QUERIES} more)" if queries.size > MAX_SHOWN_QUERIES
    "Queries:\n#{shown.join("\n")}"
  end

  # The perfguard SQLSTATE of an ActiveRecord::StatementInvalid, or nil.
  def self.sqlstate(error)
    result = error.respond_to?(:cause) && error.cause.respond_to?(:result) ? error.cause.result : nil
    code = result&.error_field(PG::Result::PG_DIAG_SQLSTATE)
    SQLSTATES.include?(code) ? code : nil
  end

  def self.describe(error)
    result = error.cause.result
    lines = ["#{result.error_field(PG::Result::PG_DIAG_SQLSTATE)} " \
             "#{result.error_field(PG::Result::PG_DIAG_MESSAGE_PRIMARY)}"]
    detail = result.error_field(PG::Result::PG_DIAG_MESSAGE_DETAIL)
    hint = result.error_field(PG::Result::PG_DIAG_MESSAGE_HINT)
    lines << detail if detail
    lines << "Suggestion: #{hint}" if hint
    lines.join("\n")
  end

  module Assertions
    # Guards set to 'collect' for each test (keys of Perfguard::GUARDS); [] for none.
    def perfguard_collect
      [:n_plus_one]
    end

    # An Integer: perfguard.max_queries_per_request for the test, collected too.
    def perfguard_max_queries
      nil
    end

    # Tag the test's statements perfguard='test' (kept out of the reports).
    def perfguard_tag_test?
      true
    end

    # The connection the test's guards are set on.
    def perfguard_connection
      ActiveRecord::Base.connection
    end

    def after_setup
      super
      perfguard_start_test
    end

    def before_teardown
      perfguard_finish_test
      super
    end

    def assert_no_n_plus_one(connection: ActiveRecord::Base.connection, label: nil, &block)
      perfguard_guard(connection, { "perfguard.on_n_plus_one" => "error" }, label, &block)
    end

    def assert_no_duplicate_queries(connection: ActiveRecord::Base.connection, label: nil, &block)
      perfguard_guard(connection, { "perfguard.on_duplicate" => "error" }, label, &block)
    end

    def assert_max_queries(num, connection: ActiveRecord::Base.connection, label: nil, &block)
      raise ArgumentError, "assert_max_queries needs a positive number" unless num.to_i.positive?
      perfguard_guard(connection, { "perfguard.max_queries_per_request" => num.to_i.to_s,
                                    "perfguard.on_too_many_queries" => "error" }, label, &block)
    end

    private

    # {setting => value} for the test, from perfguard_collect and perfguard_max_queries.
    def perfguard_test_settings
      names = Array(perfguard_collect).map(&:to_sym)
      unknown = names - GUARDS.keys
      raise ArgumentError, "perfguard_collect: unknown guard(s) #{unknown.join(', ')}" if unknown.any?
      gucs = names.to_h { |name| [GUARDS[name], "collect"] }
      if perfguard_max_queries
        raise ArgumentError, "perfguard_max_queries must be positive" unless perfguard_max_queries.to_i.positive?
        gucs[MAX_QUERIES] = perfguard_max_queries.to_i.to_s
        gucs[GUARDS[:too_many_queries]] = "collect"
      end
      gucs
    end

    def perfguard_start_test
      gucs = perfguard_test_settings
      return if gucs.empty? && !perfguard_tag_test?
      label = "#{self.class.name}##{name}".byteslice(0, 63).scrub("")
      state = @perfguard_test = { tags: Thread.current[TAGS_KEY] }
      # first, so that the statements below belong to the test's request
      if perfguard_tag_test?
        Thread.current[TAGS_KEY] = (state[:tags] || {}).merge(perfguard: "test", route: label)
      end
      return if gucs.empty?
      connection = perfguard_connection
      # SHOW, SET and DO are utility statements: perfguard counts them as no query
      saved = (gucs.keys | GUARDS.values).sort.to_h do |guc|
        [guc, connection.select_value("SHOW #{guc}")]
      end
      connection.execute(FORGET_COLLECTED)
      gucs.sort.each { |guc, value| connection.execute("SET #{guc} = #{connection.quote(value)}") }
      queries = []
      subscriber = ActiveSupport::Notifications.subscribe("sql.active_record") do |*, payload|
        next if payload[:cached] || %w[SCHEMA TRANSACTION].include?(payload[:name])
        next if payload[:connection] && !payload[:connection].equal?(connection)
        queries << payload[:sql]
      end
      state.update(connection: connection, saved: saved, queries: queries, subscriber: subscriber)
    end

    # Restore the settings and call perfguard.check_collected(): one failure
    # listing every finding and the queries.  When the test failed already,
    # forget the findings instead.
    def perfguard_finish_test
      state = @perfguard_test
      return unless state
      @perfguard_test = nil
      message = nil
      begin
        connection = state[:connection]
        if connection
          ActiveSupport::Notifications.unsubscribe(state[:subscriber])
          if failures.any?
            perfguard_forget(connection, state[:saved])
          else
            # checked with the test's settings (the message names its
            # max_queries_per_request), restored after
            begin
              message = perfguard_check_collected(connection, state[:queries])
            ensure
              perfguard_restore(connection, state[:saved])
            end
          end
        end
      ensure
        Thread.current[TAGS_KEY] = state[:tags]
      end
      flunk(message) if message
    end

    def perfguard_restore(connection, saved)
      saved.each { |guc, value| connection.execute("SET #{guc} = #{connection.quote(value)}") }
    end

    # The test failed already: only its own failure is reported.  In an
    # aborted transaction nothing runs (the rollback restores the settings;
    # the next test forgets what is left).
    def perfguard_forget(connection, saved)
      perfguard_restore(connection, saved)
      connection.execute(FORGET_COLLECTED)
    rescue ActiveRecord::ActiveRecordError
      nil
    end

    def perfguard_check_collected(connection, queries)
      check = -> { connection.execute(CHECK_COLLECTED) }
      # a savepoint inside the test's transaction, which stays usable
      connection.transaction_open? ? connection.transaction(requires_new: true, &check) : check.call
      nil
    rescue ActiveRecord::StatementInvalid => e
      raise unless Perfguard.error_sqlstate(e) == COLLECTED_SQLSTATE
      "#{Perfguard.describe_collected(e)}\n#{Perfguard.describe_queries(queries)}"
    end

    def perfguard_guard(connection, gucs, label)
      label ||= "#{self.class.name}##{name}"
      label = label.byteslice(0, 63).scrub("")
      # The guard's own statements carry no request id (begin_request() with
      # an id would first open the shared request of that id, a one-query
      # request of its own; inside the explicit scope, statements with an id
      # stay in it), and the settings are read with SHOW, a utility statement
      # like SET, so that begin_request() is the only query of the scope it
      # ends.
      saved = Perfguard.without_request_id do
        (gucs.keys | GUARDS.values).sort.to_h { |guc| [guc, connection.select_value("SHOW #{guc}")] }
      end
      failure = nil
      result = nil
      opened = false
      begin
        run = lambda do
          Perfguard.without_request_id do
            connection.execute("SELECT perfguard.begin_request(#{connection.quote(label)})")
            opened = true
            gucs.sort.each { |guc, value| connection.execute("SET #{guc} = #{connection.quote(value)}") }
          end
          result = yield
        end
        if connection.transaction_open?
          connection.transaction(requires_new: true, &run)
        else
          run.call
        end
      rescue ActiveRecord::StatementInvalid => e
        raise unless Perfguard.sqlstate(e)
        failure = e
      ensure
        if opened
          Perfguard.without_request_id do
            # end_request() with the guards off: at 'collect' (the test's
            # guards) it would report the test's findings here
            GUARDS.values.sort.each { |guc| connection.execute("SET #{guc} = 'off'") }
            connection.select_all("SELECT * FROM perfguard.end_request()")
            saved.each { |guc, value| connection.execute("SET #{guc} = #{connection.quote(value)}") }
          end
        end
      end
      flunk(Perfguard.describe(failure)) if failure
      result
    end
  end
end
