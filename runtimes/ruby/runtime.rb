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
# Errors are reported as AWS's Ruby runtime interface client (aws_lambda_ric)
# reports them: {"errorMessage","errorType","stackTrace":[...]} where
# errorType is `Function<ArgumentError>` for what a handler raises and
# `Init<LoadError>`, `Init<SyntaxError>`, … for what loading the handler's
# file raises (then the process exits with status 252: Lambda starts a new one
# for the next event). The Lambda-Runtime-Function-Error-Type header names the
# class only for Ruby's own common errors, `Function<UserException>` else.
# NameError and NoMethodError (which is also what a misspelt handler method
# gives) and exceptions outside StandardError (`exit`, NoMemoryError, …) are
# critical: reported, then the process ends with status 255, since the
# runtime's state can no longer be trusted. Each error is also logged on
# stdout: "Error raised from handler method" (or "Critical exception from
# handler") and the error document as indented JSON.
#
# Logging: a Logger made for $stdout or $stderr writes Lambda's line format,
# `I, [2026-12-06T10:00:00.123456 #8]  INFO <request id> -- : message`, as
# on Lambda.

require 'json'
require 'logger'
require 'net/http'
require 'stringio'

# Log lines reach lambdabox as they are written, not when a buffer fills.
$stdout.sync = true
$stderr.sync = true

# Kept in one module so nothing here clashes with the function's own names.
module LambdaboxRuntime
  API_BASE = '/2018-06-01/runtime'
  ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type'
  # Classes whose name the error-type header may carry, as aws_lambda_ric allows.
  NAMED_ERRORS = %w[ArgumentError NoMethodError Exception StandardError NameError LoadError SystemExit
                    SystemStackError].freeze
  # Exit statuses after a critical handler error and after an init error.
  CRITICAL_EXIT = 255
  INIT_EXIT = 252

  # The request id of the invocation under way, for log lines.
  @request_id = nil
  class << self
    attr_accessor :request_id
  end

  # Lambda's line format for a Logger writing to the function's output.
  class LogFormatter < ::Logger::Formatter
    def call(severity, time, progname, msg)
      line = format('%<sev>s, [%<datetime>s #%<pid>d] %<severity>5s %<request_id>s -- %<progname>s: %<msg>s',
                    sev: severity[0], datetime: format_datetime(time), pid: Process.pid, severity: severity,
                    request_id: LambdaboxRuntime.request_id, progname: progname, msg: msg2str(msg))
        "#{LambdaboxRuntime.utf8(line)}\n"
    end
  end

  # With `LoggingConfig.LogFormat: JSON` (AWS_LAMBDA_LOG_FORMAT=JSON): one
  # JSON object per record, with the request id, as Lambda's Ruby runtime
  # writes them.
  class JsonLogFormatter < ::Logger::Formatter
    def call(severity, time, progname, msg)
      record = { timestamp: time.utc.strftime('%Y-%m-%dT%H:%M:%S.%6NZ'), level: severity,
                 message: LambdaboxRuntime.utf8(msg.is_a?(Exception) ? msg.message : msg2str(msg)),
                 requestId: LambdaboxRuntime.request_id }
      record[:logger] = LambdaboxRuntime.utf8(progname) unless progname.to_s.empty?
      if msg.is_a?(Exception)
        record[:errorType] = msg.class.to_s
        record[:stackTrace] = Array(msg.backtrace).map { |line| LambdaboxRuntime.utf8(line) }
      end
      "#{JSON.generate(record.compact)}\n"
    end
  end

  # Logger levels for AWS_LAMBDA_LOG_LEVEL (Ruby's Logger has no TRACE).
  LOG_LEVELS = { 'TRACE' => ::Logger::DEBUG, 'DEBUG' => ::Logger::DEBUG, 'INFO' => ::Logger::INFO,
                 'WARN' => ::Logger::WARN, 'ERROR' => ::Logger::ERROR, 'FATAL' => ::Logger::FATAL }.freeze

  # Prepended to Logger: a logger for $stdout or $stderr gets Lambda's format
  # (text, or JSON at the configured level) unless it is given one; loggers
  # to files are left alone.
  module LoggerFormat
    def initialize(logdev, *args, **options)
      if logdev.nil? || logdev == $stdout || logdev == $stderr
        json = ENV['AWS_LAMBDA_LOG_FORMAT'] == 'JSON'
        options[:formatter] ||= json ? JsonLogFormatter.new : LogFormatter.new
        options[:level] ||= LOG_LEVELS.fetch(ENV.fetch('AWS_LAMBDA_LOG_LEVEL', 'INFO'), ::Logger::INFO) if json
      end
      super
    end
  end

  # What Lambda passes a Ruby handler as `context:`. Field names and types
  # are Lambda's (memory_limit_in_mb is a String there too).
  class Context
    attr_reader :aws_request_id, :invoked_function_arn, :function_name, :function_version,
                :memory_limit_in_mb, :log_group_name, :log_stream_name, :deadline_ms,
                :identity, :client_context, :tenant_id

    # `invocation` is the response to GET /invocation/next.
    def initialize(invocation)
      @aws_request_id = invocation['Lambda-Runtime-Aws-Request-Id']
      @invoked_function_arn = invocation['Lambda-Runtime-Invoked-Function-Arn']
      @deadline_ms = invocation['Lambda-Runtime-Deadline-Ms'].to_i
      @identity = json_header(invocation['Lambda-Runtime-Cognito-Identity'])
      @client_context = json_header(invocation['Lambda-Runtime-Client-Context'])
      tenant = invocation['Lambda-Runtime-Aws-Tenant-Id']
      @tenant_id = tenant unless tenant.to_s.empty?
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
        # Lambda's own wording, the parts shown as a Ruby array.
        raise ArgumentError,
              "Invalid handler #{parts}, must be of form FILENAME.METHOD or FILENAME.CLASS.METHOD where FILENAME " \
              'corresponds with an existing Ruby source file FILENAME.rb, CLASS is an optional module/class ' \
              'namespace and METHOD is a callable method. If using CLASS, METHOD must be a class-level method.'
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

    def respond(request_id, body, content_type = 'application/json')
      post("#{API_BASE}/invocation/#{request_id}/response", body, 'Content-Type' => content_type)
    end

    def invocation_error(request_id, document, error)
      post("#{API_BASE}/invocation/#{request_id}/error", LambdaboxRuntime.dump(document),
           ERROR_TYPE_HEADER => LambdaboxRuntime.header_type(document, error))
    end

    def init_error(document, error)
      post("#{API_BASE}/init/error", LambdaboxRuntime.dump(document),
           ERROR_TYPE_HEADER => LambdaboxRuntime.header_type(document, error))
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
      # The function's frames, up to the first of this runtime's own.
      stackTrace: (error.backtrace || []).first(100).take_while { |line| !line.start_with?(__FILE__) }
                                          .map { |l| utf8(l) }
    }
  end

  # The error-type header: the document's type for Ruby's common errors.
  def header_type(document, error)
    return document[:errorType] if error.nil? || NAMED_ERRORS.include?(error.class.to_s)

    document[:errorType].sub(/<.*>\z/, '<UserException>')
  end

  # How aws_lambda_ric logs an error: a headline, then the document indented.
  def log_error(headline, document)
    $stdout.puts headline
    $stdout.puts JSON.pretty_generate(document)
  end

  # The answer's body and content type: an IO's bytes as they are (as
  # aws_lambda_ric sends a StringIO or IO), anything else as its `to_json`.
  def marshal(result)
    case result
    when StringIO, IO then [result.read.to_s, 'application/unknown']
    else [result.to_json, 'application/json']
    end
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
    LambdaboxRuntime.request_id = request_id
    trace_id = invocation['Lambda-Runtime-Trace-Id']
    trace_id ? ENV['_X_AMZN_TRACE_ID'] = trace_id : ENV.delete('_X_AMZN_TRACE_ID')
    begin
      event = event_of(invocation)
    rescue JSON::ParserError => e
      api.invocation_error(request_id, { errorMessage: utf8(e.message), errorType: 'Runtime.UnmarshalError',
                                         stackTrace: [] }, nil)
      return
    end
    begin
      # Serialising is the handler's business too: a `to_json` that raises is its error.
      body, content_type = marshal(handler.call(event, Context.new(invocation)))
    rescue NameError => e # NoMethodError too
      critical(api, request_id, e)
    rescue StandardError => e
      report(api, request_id, e, 'Error raised from handler method')
      return
    rescue Exception => e # rubocop:disable Lint/RescueException -- exit, NoMemoryError, signals: report, then end
      critical(api, request_id, e)
    end
    api.respond(request_id, body, content_type)
  end

  def report(api, request_id, error, headline)
    document = error_document(error, 'Function')
    log_error(headline, document)
    api.invocation_error(request_id, document, error)
  end

  # Report, then end the process: the runtime's state cannot be trusted.
  def critical(api, request_id, error)
    report(api, request_id, error, 'Critical exception from handler')
    Kernel.exit(CRITICAL_EXIT)
  end

  def main
    api = Api.new(ENV.fetch('AWS_LAMBDA_RUNTIME_API', '127.0.0.1:9001'))
    spec = ENV.fetch('_HANDLER', '')
    begin
      handler = Handler.load(spec, ENV.fetch('LAMBDA_TASK_ROOT', '/var/task'))
    rescue Exception => e # rubocop:disable Lint/RescueException -- any failure to load is an init error
      document = error_document(e, 'Init')
      log_error("Init error when loading handler #{spec}", document)
      api.init_error(document, e)
      Kernel.exit(INIT_EXIT)
    end
    Kernel.loop { serve(api, handler, api.next_invocation) }
  end
end

Logger.prepend(LambdaboxRuntime::LoggerFormat)
# Run as the bootstrap does; the image's prestart loads this ahead of need
# and enters main itself once it knows its function.
LambdaboxRuntime.main if $PROGRAM_NAME == __FILE__
