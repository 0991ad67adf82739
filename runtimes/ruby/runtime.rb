# frozen_string_literal: true

# lambdabox's Ruby runtime client: the Lambda Runtime API loop for handlers
# written for AWS Lambda's Ruby runtimes, with Ruby's standard library only
# (no gems, so the image builds without rubygems.org).
#
# Handlers: `_HANDLER` is `file.method` (a top-level method of
# LAMBDA_TASK_ROOT/file.rb) or `file.Module::Class.method` (a class method),
# called as `method(event:, context:)`. The event is the parsed JSON payload;
# the return value is sent back as its `to_json`.
#
# Errors are reported as Lambda's Ruby runtime reports them:
# {"errorMessage","errorType","stackTrace":[...]} where errorType is
# `Function<ArgumentError>` for what a handler raises and `Init<LoadError>`,
# `Init<SyntaxError>`, … for what loading the handler's file raises (then the
# process exits: Lambda starts a new one for the next event). As on Lambda,
# NoMethodError (which is also what a misspelt handler method gives) and
# exceptions outside StandardError (`exit`, NoMemoryError, …) are reported and
# then end the process, since the runtime's state can no longer be trusted.

require 'json'
require 'net/http'

# Log lines reach lambdabox as they are written, not when a buffer fills.
$stdout.sync = true
$stderr.sync = true

# Kept in one module so nothing here clashes with the function's own names.
module LambdaboxRuntime
  API_BASE = '/2018-06-01/runtime'
  ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type'

  # What Lambda passes a Ruby handler as `context:`. Field names and types
  # are Lambda's (memory_limit_in_mb is a String there too).
  class Context
    attr_reader :aws_request_id, :invoked_function_arn, :function_name, :function_version,
                :memory_limit_in_mb, :log_group_name, :log_stream_name, :deadline_ms,
                :identity, :client_context

    # `invocation` is the response to GET /invocation/next.
    def initialize(invocation)
      @aws_request_id = invocation['Lambda-Runtime-Aws-Request-Id']
      @invoked_function_arn = invocation['Lambda-Runtime-Invoked-Function-Arn']
      @deadline_ms = invocation['Lambda-Runtime-Deadline-Ms'].to_i
      @identity = json_header(invocation['Lambda-Runtime-Cognito-Identity'])
      @client_context = json_header(invocation['Lambda-Runtime-Client-Context'])
      @function_name = ENV['AWS_LAMBDA_FUNCTION_NAME']
      @function_version = ENV['AWS_LAMBDA_FUNCTION_VERSION']
      @memory_limit_in_mb = ENV['AWS_LAMBDA_FUNCTION_MEMORY_SIZE']
      @log_group_name = ENV['AWS_LAMBDA_LOG_GROUP_NAME']
      @log_stream_name = ENV['AWS_LAMBDA_LOG_STREAM_NAME']
    end

    # Milliseconds left before the deadline (wall clock, as the deadline is), never negative.
    def get_remaining_time_in_millis # rubocop:disable Naming/AccessorMethodName -- Lambda's name
      [@deadline_ms - Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond), 0].max
    end

    private

    # Identity and client context arrive as JSON; a malformed one is dropped
    # rather than failing the invocation over data the handler may not read.
    def json_header(value)
      value && !value.empty? ? JSON.parse(value) : nil
    rescue JSON::ParserError
      nil
    end
  end

  # The function's handler, named by `_HANDLER`.
  class Handler
    # Parse `spec` and load its file from `root`. Raises whatever loading
    # raises (LoadError, SyntaxError, the file's own top-level errors) and
    # ArgumentError for a malformed handler name, as Lambda's runtime does.
    def self.load(spec, root)
      parts = spec.split('.', -1)
      unless [2, 3].include?(parts.size) && parts.none?(&:empty?)
        raise ArgumentError,
              "Invalid handler #{spec.inspect}: expected FILE.METHOD or FILE.Module::Class.METHOD, " \
              'where FILE.rb is in the function code and a Module::Class method is a class method'
      end
      file, *owner, method = parts
      # The function's folder comes first, so its files win over same-named libraries.
      $LOAD_PATH.unshift(root) unless $LOAD_PATH.first == root
      require file
      new(owner.first, method.to_sym)
    end

    def initialize(owner, method)
      @owner = owner
      @method = method
    end

    # Call the handler. The owner is looked up on every call, as on Lambda,
    # so a missing class or method surfaces as that invocation's error.
    def call(event, context)
      receiver = @owner ? Object.const_get(@owner) : TOPLEVEL_BINDING.receiver
      # __send__: top-level methods are private methods of `main`.
      receiver.__send__(@method, event: event, context: context)
    end
  end

  # One keep-alive HTTP connection to the Runtime API, reused for every call.
  class Api
    # Errors meaning the connection went away between two requests.
    STALE = [EOFError, Errno::ECONNRESET, Errno::EPIPE, IOError].freeze

    def initialize(address)
      host, port = address.split(':', 2)
      # No proxy, whatever http_proxy the function's environment sets.
      @http = Net::HTTP.new(host, Integer(port || 80), nil)
      # The long-poll for the next event may last any time at all.
      @http.read_timeout = nil
      # Net::HTTP reconnects after 2 s idle by default; reuse the connection
      # instead (it still reconnects when the other end has closed it).
      @http.keep_alive_timeout = 24 * 3600
      @http.start
    end

    # GET /invocation/next; the process ends when the API refuses (it
    # answers 500 when this runtime should stop).
    def next_invocation
      response = @http.request(Net::HTTP::Get.new("#{API_BASE}/invocation/next"))
      return response if response.is_a?(Net::HTTPOK)

      Kernel.warn "lambdabox runtime: GET invocation/next answered #{response.code}: #{response.body}"
      Kernel.exit(1)
    end

    def respond(request_id, body)
      post("#{API_BASE}/invocation/#{request_id}/response", body, {})
    end

    def invocation_error(request_id, document)
      post("#{API_BASE}/invocation/#{request_id}/error", LambdaboxRuntime.dump(document),
           ERROR_TYPE_HEADER => document[:errorType])
    end

    def init_error(document)
      post("#{API_BASE}/init/error", LambdaboxRuntime.dump(document), ERROR_TYPE_HEADER => document[:errorType])
    end

    private

    # Net::HTTP retries only idempotent requests on a stale connection; a
    # POST is retried here once too (a duplicate is refused by the API, harmlessly).
    def post(path, body, headers)
      attempts = 0
      begin
        request = Net::HTTP::Post.new(path, { 'Content-Type' => 'application/json' }.merge(headers))
        request.body = body
        @http.request(request)
      rescue *STALE
        attempts += 1
        raise if attempts > 1

        @http.finish if @http.started?
        @http.start
        retry
      end
    end
  end

  # Kernel's methods are called as Kernel.x below: a function's top-level
  # `def warn` or `def exit` becomes a method of every object, this module too.
  module_function

  # Lambda's error document: `stage` is "Function" for what a handler raised,
  # "Init" for what loading it raised.
  def error_document(error, stage)
    {
      errorMessage: utf8(error.message),
      errorType: "#{stage}<#{error.class}>",
      stackTrace: (error.backtrace || []).reject { |line| line.start_with?(__FILE__) }.first(100).map { |l| utf8(l) }
    }
  end

  # Text that JSON can carry whatever its encoding was.
  def utf8(text)
    text.to_s.encode('UTF-8', invalid: :replace, undef: :replace).scrub
  end

  def dump(document)
    JSON.generate(document)
  end

  # The event: JSON unless the API says otherwise (then the raw body, as on Lambda).
  def event_of(invocation)
    body = (invocation.body || '').dup.force_encoding(Encoding::UTF_8)
    type = invocation['Content-Type']
    type.nil? || type.start_with?('application/json') ? JSON.parse(body) : body
  end

  # Run one invocation; returns normally unless the process must end.
  def serve(api, handler, invocation)
    request_id = invocation['Lambda-Runtime-Aws-Request-Id']
    trace_id = invocation['Lambda-Runtime-Trace-Id']
    trace_id ? ENV['_X_AMZN_TRACE_ID'] = trace_id : ENV.delete('_X_AMZN_TRACE_ID')
    begin
      event = event_of(invocation)
    rescue JSON::ParserError => e
      api.invocation_error(request_id, errorMessage: utf8(e.message), errorType: 'Runtime.UnmarshalError',
                                       stackTrace: [])
      return
    end
    fatal = nil
    begin
      # Serialising is the handler's business too: a `to_json` that raises is its error.
      body = handler.call(event, Context.new(invocation)).to_json
    rescue NoMethodError => e
      fatal = e
    rescue StandardError => e
      report(api, request_id, e)
      return
    rescue Exception => e # rubocop:disable Lint/RescueException -- exit, NoMemoryError, signals: report, then end
      fatal = e
    end
    if fatal
      report(api, request_id, fatal)
      # `exit 3` keeps its status; anything else is a failure.
      Kernel.exit(fatal.is_a?(SystemExit) ? fatal.status : 1)
    end
    api.respond(request_id, body)
  end

  def report(api, request_id, error)
    document = error_document(error, 'Function')
    Kernel.warn "Error raised from handler method #{dump(document)}"
    api.invocation_error(request_id, document)
  end

  def main
    api = Api.new(ENV.fetch('AWS_LAMBDA_RUNTIME_API', '127.0.0.1:9001'))
    spec = ENV.fetch('_HANDLER', '')
    begin
      handler = Handler.load(spec, ENV.fetch('LAMBDA_TASK_ROOT', '/var/task'))
    rescue Exception => e # rubocop:disable Lint/RescueException -- any failure to load is an init error
      document = error_document(e, 'Init')
      Kernel.warn "Init error when loading handler #{spec} #{dump(document)}"
      api.init_error(document)
      Kernel.exit(1)
    end
    Kernel.loop { serve(api, handler, api.next_invocation) }
  end
end

LambdaboxRuntime.main
