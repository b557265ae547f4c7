using System;
using System.Collections.Generic;
using System.Globalization;

namespace Nami
{
    /// <summary>
    /// Which terminal a <see cref="Middleware"/> operation is for: a TCP terminal at <c>ip:port</c>, or
    /// the one COM (serial) connection.
    /// </summary>
    public sealed class TerminalTarget
    {
        /// <summary>The IP address or host name; null for COM.</summary>
        public string Ip { get; private set; }

        /// <summary>The TCP port; 0 for COM.</summary>
        public int Port { get; private set; }

        /// <summary>True for the COM connection.</summary>
        public bool IsCom { get; private set; }

        private TerminalTarget() { }

        /// <summary>A TCP terminal.</summary>
        /// <param name="ip">Its IP address or host name.</param>
        /// <param name="port">Its port, 1-65535.</param>
        /// <returns>The target.</returns>
        public static TerminalTarget Tcp(string ip, int port)
        {
            if (ip == null) throw new ArgumentNullException("ip");
            if (port < 1 || port > 65535) throw new ArgumentOutOfRangeException("port", port, "must be 1-65535");
            return new TerminalTarget { Ip = ip, Port = port };
        }

        /// <summary>The COM connection opened with <see cref="Middleware.ConnectSerial"/>.</summary>
        public static TerminalTarget Com { get { return ComTarget; } }

        private static readonly TerminalTarget ComTarget = new TerminalTarget { IsCom = true };

        internal JsonObject Selector()
        {
            return IsCom ? new JsonObject().Add("com", true) : new JsonObject().Add("ip", Ip).Add("port", Port);
        }

        internal string TransactionEndpoint
        {
            get { return IsCom ? "/performTransactionCOM" : "/performTransactionTCPIP"; }
        }

        internal string TransactionBody(string paymentRequestJson)
        {
            var body = IsCom ? "{" : "{\"tcpipcomData\":" + new JsonObject().Add("ip", Ip).Add("port", Port) + ",";
            return body + "\"paymentRequest\":" + paymentRequestJson + "}";
        }

        /// <summary><c>ip:port</c>, or <c>COM</c>.</summary>
        /// <returns>The terminal's key.</returns>
        public override string ToString()
        {
            return IsCom ? "COM" : Ip + ":" + Port.ToString(CultureInfo.InvariantCulture);
        }
    }

    /// <summary>
    /// The Nami middleware in process: the REST API of the local daemon (port 9099) without HTTP, with
    /// the transaction journal (idempotency by ECR reference: a repeated request is answered from the
    /// journal, never charged twice), registrations kept across restarts and automatic recovery of
    /// unknown outcomes with DUPLICATE.
    /// </summary>
    /// <remarks>
    /// <para>Two ways in: <see cref="Call"/> takes the REST path and JSON body and returns the REST
    /// JSON unchanged (an integration that speaks HTTP today moves here without touching its JSON);
    /// the typed operations (<see cref="Purchase(TerminalTarget, string, string, bool?)"/>, ...) build
    /// those bodies and turn the answers into <see cref="TxnResult"/> or typed exceptions.</para>
    /// <para>Thread-safe: calls for different terminals run in parallel; <see cref="Cancel()"/> may be
    /// called from any thread. Only one middleware may use a state directory at a time.</para>
    /// </remarks>
    public sealed class Middleware : IDisposable
    {
        private readonly ClientHandle _handle;
        private int _disposed;

        /// <summary>
        /// State changes of every terminal (<c>waitingForCard</c>, <c>responseReceived</c>, ...) and the
        /// middleware's own <c>outcomeResolved</c>. Raised on a library thread; see
        /// <see cref="TerminalEventArgs"/>. An exception thrown by a handler is logged and ignored.
        /// </summary>
        public event EventHandler<TerminalEventArgs> StateChanged;

        /// <summary>Opens the middleware with the default options (state in the platform's data directory).</summary>
        public Middleware() : this((NamiOptions)null) { }

        /// <summary>Opens the middleware.</summary>
        /// <param name="options">The options (state directory, timeouts, logging), or null for the defaults.</param>
        /// <exception cref="InvalidInputException">An option is not valid (the message names it).</exception>
        /// <exception cref="NamiException">The state directory cannot be opened.</exception>
        public Middleware(NamiOptions options) : this(options == null ? null : options.ToJson()) { }

        /// <summary>Opens the middleware with the C ABI's <c>options_json</c> (see nami.h, <c>nami_client_new</c>).</summary>
        /// <param name="optionsJson">A JSON object such as <c>{"stateDir":"C:\\POS\\nami"}</c>, or null for the defaults.</param>
        /// <exception cref="InvalidInputException">An option is not valid (the message names it).</exception>
        public Middleware(string optionsJson)
        {
            NamiLibrary.EnsureCompatible();
            ClientHandle h;
            var status = NativeMethods.nami_client_new(Utf8.Z(optionsJson), out h);
            if (status != NamiStatus.Ok || h == null || h.IsInvalid)
            {
                var message = Utf8.LastError();
                if (h != null) h.Dispose();
                throw NamiException.From(status == NamiStatus.Ok ? NamiStatus.Internal : status, message, null, null);
            }
            _handle = h;
            try
            {
                NativeMethods.EventCallback callback = OnNativeEvent;
                _handle.Callback = callback; // lives as long as the native client
                NamiLibrary.Check(NativeMethods.nami_set_event_callback(_handle, callback, IntPtr.Zero));
            }
            catch
            {
                _handle.Dispose();
                throw;
            }
        }

        private void OnNativeEvent(IntPtr eventJson, IntPtr userData)
        {
            EventRelay.Raise(this, StateChanged, eventJson);
        }

        /// <summary>
        /// Calls one endpoint of the REST API, e.g. <c>/performTransactionTCPIP</c>, <c>/com/connect</c>,
        /// <c>/registrationStatus?ip=10.0.0.5&amp;port=2345</c>, <c>/transactions</c>, and returns its JSON body.
        /// </summary>
        /// <remarks>
        /// As with HTTP 200, a body that reports a middleware error (<c>"statusCode":"TIMEOUT"</c>) or a
        /// declined payment is returned, not thrown: read the JSON. What HTTP would answer with 400, 404
        /// or 500 is thrown; the exception's <see cref="NamiException.ResponseJson"/> holds the body.
        /// </remarks>
        /// <param name="endpoint">The REST path.</param>
        /// <param name="requestJson">The REST body, or null for none.</param>
        /// <returns>The response body (JSON).</returns>
        /// <exception cref="ArgumentNullException"><paramref name="endpoint"/> is null.</exception>
        /// <exception cref="InvalidInputException">The body is not JSON or not of the endpoint's shape (HTTP 400); <c>Field</c> names the bad member.</exception>
        /// <exception cref="NotFoundException">Unknown endpoint, or no such journal entry (HTTP 404).</exception>
        /// <exception cref="NamiInternalException">An internal failure (HTTP 500).</exception>
        /// <exception cref="ObjectDisposedException">The middleware was disposed.</exception>
        public string Call(string endpoint, string requestJson)
        {
            if (endpoint == null) throw new ArgumentNullException("endpoint");
            var h = Handle();
            IntPtr response;
            var status = NativeMethods.nami_call(h, Utf8.Z(endpoint), Utf8.Z(requestJson), out response);
            var error = status == NamiStatus.Ok ? null : Utf8.LastError();
            var body = Utf8.Take(response); // freed with nami_string_free
            if (status != NamiStatus.Ok) throw NamiException.From(status, error, null, body);
            return body;
        }

        /// <summary>
        /// Cancels every call of this middleware waiting for a terminal: each ends promptly with
        /// <see cref="CancelledException"/> (<c>"statusCode":"CANCELLED"</c> through <see cref="Call"/>).
        /// A payment that may have reached the terminal is recovered automatically. Callable from any
        /// thread, including a <see cref="StateChanged"/> handler.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The middleware was disposed.</exception>
        public void Cancel()
        {
            NamiLibrary.Check(NativeMethods.nami_cancel(Handle()));
        }

        /// <summary>Cancels the call waiting on one terminal (<c>/cancelTransaction</c>).</summary>
        /// <param name="target">The terminal.</param>
        public void Cancel(TerminalTarget target)
        {
            if (target == null) throw new ArgumentNullException("target");
            Call("/cancelTransaction", target.Selector().ToString());
        }

        /// <summary>Opens (and remembers) the link to a TCP terminal (<c>/tcp-ip/connect</c>).</summary>
        /// <param name="ip">The terminal's IP address or host name.</param>
        /// <param name="port">Its port, 1-65535.</param>
        /// <returns>The target to pass to the other operations.</returns>
        /// <exception cref="UnableToConnectException">The terminal cannot be reached.</exception>
        public TerminalTarget ConnectTcp(string ip, int port)
        {
            var target = TerminalTarget.Tcp(ip, port);
            var body = Json.TryParseObject(Call("/tcp-ip/connect", target.Selector().ToString()));
            if (!Json.Bool(body, "connectionStatus"))
            {
                throw new UnableToConnectException(Json.Text(body, "isConnected") ?? "cannot connect to " + target,
                    Json.Write(body));
            }
            return target;
        }

        /// <summary>Opens (and remembers) the COM connection (<c>/com/connect</c>).</summary>
        /// <param name="port"><c>COM3</c>, <c>3</c>, or a device path such as <c>/dev/ttyACM0</c>.</param>
        /// <param name="baudRate">9600, 19200, 38400, 57600 or 115200.</param>
        /// <param name="parity">The parity.</param>
        /// <param name="dataBits">7 or 8.</param>
        /// <param name="stopBits">1 or 2.</param>
        /// <returns><see cref="TerminalTarget.Com"/>.</returns>
        /// <exception cref="UnableToConnectException">The port cannot be opened.</exception>
        public TerminalTarget ConnectSerial(string port, int baudRate = 115200, Parity parity = Parity.None,
            int dataBits = 8, int stopBits = 1)
        {
            if (port == null) throw new ArgumentNullException("port");
            long number;
            object portValue = long.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out number)
                ? (object)number
                : port;
            var request = new JsonObject()
                .Add("port", portValue)
                .Add("baudRate", baudRate.ToString(CultureInfo.InvariantCulture))
                .Add("parity", (int)parity)
                .Add("dataBits", dataBits)
                .Add("stopBits", stopBits);
            var json = Call("/com/connect", request.ToString());
            var body = Json.TryParseObject(json);
            if (!Json.Bool(body, "success"))
                throw new UnableToConnectException(Json.Text(body, "message") ?? "cannot open " + port, json);
            return TerminalTarget.Com;
        }

        /// <summary>Closes and forgets a terminal's connection (<c>/tcp-ip/disconnect</c> or <c>/com/disconnect</c>); its registration is kept.</summary>
        /// <param name="target">The terminal.</param>
        public void Disconnect(TerminalTarget target)
        {
            if (target == null) throw new ArgumentNullException("target");
            if (target.IsCom) Call("/com/disconnect", null);
            else Call("/tcp-ip/disconnect", target.Selector().ToString());
        }

        /// <summary>A fresh ECR reference for a new sale from the middleware's generator (<c>/nextEcrReference</c>): never one already in the journal.</summary>
        /// <param name="cashRegisterNo">The 8-digit cash register number (the reference's first 8 digits).</param>
        /// <returns>14 digits.</returns>
        public string NextEcrReference(string cashRegisterNo)
        {
            if (cashRegisterNo == null) throw new ArgumentNullException("cashRegisterNo");
            var json = Call("/nextEcrReference", new JsonObject().Add("cashRegisterNo", cashRegisterNo).ToString());
            var body = Json.TryParseObject(json);
            var reference = Json.Text(body, "ecrReferenceNo");
            if (reference == null) throw RestError(body, json);
            return reference;
        }

        /// <summary>REGISTER (remembered across restarts).</summary>
        /// <param name="target">The terminal.</param>
        /// <param name="cashRegisterNo">The 8-digit cash register number.</param>
        /// <returns>The result; <see cref="TxnResult.TerminalId"/> is the terminal's ID.</returns>
        public TxnResult Register(TerminalTarget target, string cashRegisterNo)
        {
            NotNull(cashRegisterNo, "cashRegisterNo");
            return Run(target, Payment("REGISTER").Add("cashRegisterNo", cashRegisterNo));
        }

        /// <summary>START_SESSION.</summary>
        /// <param name="target">The terminal.</param>
        /// <param name="cashRegisterNo">The 8-digit cash register number.</param>
        /// <returns>The result (<c>000</c>).</returns>
        public TxnResult StartSession(TerminalTarget target, string cashRegisterNo)
        {
            NotNull(cashRegisterNo, "cashRegisterNo");
            return Run(target, Payment("START_SESSION").Add("cashRegisterNo", cashRegisterNo));
        }

        /// <summary>END_SESSION.</summary>
        /// <param name="target">The terminal.</param>
        /// <param name="cashRegisterNo">The 8-digit cash register number.</param>
        /// <returns>The result (<c>000</c>).</returns>
        public TxnResult EndSession(TerminalTarget target, string cashRegisterNo)
        {
            NotNull(cashRegisterNo, "cashRegisterNo");
            return Run(target, Payment("END_SESSION").Add("cashRegisterNo", cashRegisterNo));
        }

        /// <summary>
        /// PURCHASE, journaled: repeating the same request (same ECR reference, amount and date)
        /// returns the stored result (<see cref="TxnResult.Replay"/>) instead of charging again.
        /// </summary>
        /// <param name="target">The terminal.</param>
        /// <param name="amount">Decimal SAR text, e.g. <c>"10.00"</c>.</param>
        /// <param name="ecrReference">The sale's 14-digit ECR reference (see <see cref="NextEcrReference"/>).</param>
        /// <param name="print">Whether the terminal prints the receipt; null for the middleware's default.</param>
        /// <returns>The result, approved or declined.</returns>
        /// <exception cref="InvalidAmountException">The amount is not valid (<c>Field</c> <c>amount</c>).</exception>
        /// <exception cref="TerminalBusyException">Another call is running on this terminal.</exception>
        /// <exception cref="CancelledException">A cancel ended the wait.</exception>
        /// <exception cref="OutcomeUnknownException">The outcome is unknown; retry with the same reference later.</exception>
        public TxnResult Purchase(TerminalTarget target, string amount, string ecrReference, bool? print = null)
        {
            NotNull(amount, "amount");
            NotNull(ecrReference, "ecrReference");
            return Run(target, Payment("PURCHASE").Add("amount", amount).Add("ecrReferenceNo", ecrReference)
                .Add("print", PrintFlag(print)));
        }

        /// <summary>REFUND of an earlier sale, found by its RRN.</summary>
        /// <param name="target">The terminal.</param>
        /// <param name="amount">Decimal SAR text, at most the original amount.</param>
        /// <param name="rrn">The original sale's RRN (12 characters).</param>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <param name="originalDate">The original sale's date <c>ddMMyy</c>, or null.</param>
        /// <param name="approvalCode">The original sale's approval code, or null.</param>
        /// <param name="print">Whether the terminal prints the receipt; null for the default.</param>
        /// <returns>The result, approved or declined.</returns>
        public TxnResult Refund(TerminalTarget target, string amount, string rrn, string ecrReference,
            string originalDate = null, string approvalCode = null, bool? print = null)
        {
            NotNull(amount, "amount");
            NotNull(rrn, "rrn");
            NotNull(ecrReference, "ecrReference");
            return Run(target, Payment("REFUND").Add("refundAmount", amount).Add("rrnNumber", rrn)
                .Add("ecrReferenceNo", ecrReference).Add("origTransactionDate", originalDate)
                .Add("origApproveCode", approvalCode).Add("print", PrintFlag(print)));
        }

        /// <summary>REVERSAL of the terminal's last transaction.</summary>
        /// <param name="target">The terminal.</param>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <param name="print">Whether the terminal prints the receipt; null for the default.</param>
        /// <returns>The result.</returns>
        public TxnResult Reversal(TerminalTarget target, string ecrReference, bool? print = null)
        {
            NotNull(ecrReference, "ecrReference");
            return Run(target, Payment("REVERSAL").Add("ecrReferenceNo", ecrReference).Add("print", PrintFlag(print)));
        }

        /// <summary>RECONCILIATION (end-of-day settlement); the totals are in <see cref="TxnResult.RawJson"/>.</summary>
        /// <param name="target">The terminal.</param>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <param name="print">Whether the terminal prints the report; null for the default.</param>
        /// <returns>The result.</returns>
        public TxnResult Reconciliation(TerminalTarget target, string ecrReference, bool? print = null)
        {
            NotNull(ecrReference, "ecrReference");
            return Run(target, Payment("RECONCILIATION").Add("ecrReferenceNo", ecrReference)
                .Add("print", PrintFlag(print)));
        }

        /// <summary>DUPLICATE: asks the terminal for an earlier transaction by its ECR reference.</summary>
        /// <param name="target">The terminal.</param>
        /// <param name="previousEcrReference">The earlier request's ECR reference (14 digits or the last 6).</param>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <returns>The earlier transaction's reply.</returns>
        public TxnResult Duplicate(TerminalTarget target, string previousEcrReference, string ecrReference)
        {
            NotNull(previousEcrReference, "previousEcrReference");
            NotNull(ecrReference, "ecrReference");
            return Run(target, Payment("DUPLICATE").Add("prevEcrNo", previousEcrReference)
                .Add("ecrReferenceNo", ecrReference));
        }

        /// <summary>CHECK_STATUS.</summary>
        /// <param name="target">The terminal.</param>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <returns>The result (<c>000</c>).</returns>
        public TxnResult CheckStatus(TerminalTarget target, string ecrReference)
        {
            NotNull(ecrReference, "ecrReference");
            return Run(target, Payment("CHECK_STATUS").Add("ecrReferenceNo", ecrReference));
        }

        /// <summary>
        /// Any transaction type, described by a REST <c>paymentRequest</c> body, e.g.
        /// <c>{"txnType":"PRE_AUTHORIZATION","amount":"25.00","ecrReferenceNo":"12345678000042"}</c>
        /// (<c>jsonResponse</c> is set to true when absent, so that <see cref="TxnResult.RawJson"/> has
        /// the named fields).
        /// </summary>
        /// <param name="target">The terminal.</param>
        /// <param name="paymentRequestJson">The <c>paymentRequest</c> JSON object.</param>
        /// <returns>The result, approved or declined.</returns>
        public TxnResult Transact(TerminalTarget target, string paymentRequestJson)
        {
            if (target == null) throw new ArgumentNullException("target");
            NotNull(paymentRequestJson, "paymentRequestJson");
            var request = paymentRequestJson;
            string txnType = null;
            var parsed = Json.TryParseObject(paymentRequestJson);
            if (parsed != null)
            {
                txnType = Json.Text(parsed, "txnType");
                if (!parsed.ContainsKey("jsonResponse"))
                {
                    parsed["jsonResponse"] = true;
                    request = Json.Write(parsed);
                }
            }
            return Finish(txnType, Call(target.TransactionEndpoint, target.TransactionBody(request)));
        }

        private static JsonObject Payment(string txnType)
        {
            return new JsonObject().Add("txnType", txnType).Add("jsonResponse", true);
        }

        private static string PrintFlag(bool? print)
        {
            return print.HasValue ? (print.Value ? "1" : "0") : null;
        }

        private TxnResult Run(TerminalTarget target, JsonObject payment)
        {
            if (target == null) throw new ArgumentNullException("target");
            string txnType = null;
            foreach (var member in payment.Members)
                if (member.Key == "txnType") txnType = (string)member.Value;
            return Finish(txnType, Call(target.TransactionEndpoint, target.TransactionBody(payment.ToString())));
        }

        /// <summary>A transaction response: a result when the terminal answered (<c>"200"</c>), else the typed exception.</summary>
        private static TxnResult Finish(string txnType, string json)
        {
            var body = Json.TryParseObject(json);
            if (body == null) throw new NamiInternalException("the middleware answered something that is not a JSON object", json);
            if (Json.Text(body, "statusCode") != "200") throw RestError(body, json);
            if (txnType == null)
            {
                object parsed;
                if (body.TryGetValue("parsedTransaction", out parsed))
                    txnType = Json.Text(parsed as Dictionary<string, object>, "transactionType");
            }
            return TxnResult.FromRest(txnType == null ? null : txnType.ToUpperInvariant(), body, json);
        }

        /// <summary>The typed exception of a REST body reporting a middleware error (<c>statusCode</c> other than 200).</summary>
        private static NamiException RestError(Dictionary<string, object> body, string json)
        {
            var code = Json.Text(body, "statusCode");
            var message = Json.Text(body, "statusMessage") ?? Json.Text(body, "message") ?? json;
            if (code != null && message != null && !message.StartsWith(code, StringComparison.Ordinal))
                message = code + ": " + message;
            var unknown = Json.Bool(body, "outcomeUnknown") ? Json.Text(body, "ecrReferenceNo") : null;
            return NamiException.From(NamiException.StatusOfCode(code), message, unknown, json);
        }

        private ClientHandle Handle()
        {
            if (_disposed != 0 || _handle.IsClosed) throw new ObjectDisposedException("Middleware");
            return _handle;
        }

        private static void NotNull(object value, string name)
        {
            if (value == null) throw new ArgumentNullException(name);
        }

        /// <summary>
        /// Cancels running calls, stops the events and recovery, closes the terminals and frees the
        /// native client (the journal and registrations stay on disk). Safe to call more than once. Not
        /// from inside a <see cref="StateChanged"/> handler.
        /// </summary>
        /// <exception cref="InvalidOperationException">Called from a <see cref="StateChanged"/> handler.</exception>
        public void Dispose()
        {
            if (EventRelay.InCallback)
                throw new InvalidOperationException("a Middleware cannot be disposed from inside its StateChanged handler");
            if (System.Threading.Interlocked.Exchange(ref _disposed, 1) != 0) return;
            if (!_handle.IsClosed && !_handle.IsInvalid)
            {
                NativeMethods.nami_cancel(_handle);
                NativeMethods.nami_set_event_callback(_handle, null, IntPtr.Zero);
            }
            _handle.Dispose();
        }
    }
}
