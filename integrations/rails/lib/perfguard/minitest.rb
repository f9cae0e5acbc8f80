# frozen_string_literal: true

# Minitest assertions backed by perfguard's guards.
#
#   class PostsTest < ActiveSupport::TestCase   # or Minitest::Test
#     include Perfguard::Assertions
#
#     def test_index_has_no_n_plus_one
#       assert_no_n_plus_one { get posts_path }
#     end
#   end
#
# Each assertion opens an explicit perfguard scope on the connection
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
        gucs.keys.sort.to_h { |guc| [guc, connection.select_value("SHOW #{guc}")] }
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
            saved.each { |guc, value| connection.execute("SET #{guc} = #{connection.quote(value)}") }
            connection.select_all("SELECT * FROM perfguard.end_request()")
          end
        end
      end
      flunk(Perfguard.describe(failure)) if failure
      result
    end
  end
end
