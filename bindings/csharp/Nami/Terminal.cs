using System;
using System.Globalization;

namespace Nami
{
    /// <summary>
    /// One Nami payment terminal over TCP/IP or a serial (USB COM) port, driven directly with typed
    /// operations (no journal: use <see cref="Middleware"/> for idempotency by ECR reference and
    /// automatic recovery of unknown outcomes).
    /// </summary>
    /// <remarks>
    /// <para>Every operation blocks until the terminal answers, its deadline passes (150 s for
    /// card-present types, 60 s for settlement, 30 s for admin types) or <see cref="Cancel"/> is
    /// called from another thread. One transaction runs at a time: a second one fails with
    /// <see cref="TerminalBusyException"/>. The class is thread-safe.</para>
    /// <para>A terminal that answered returns a <see cref="TxnResult"/>, approved or declined; every
    /// other outcome is a <see cref="NamiException"/>. When the outcome of a financial request is
    /// unknown (<see cref="NamiException.IsOutcomeUnknown"/>), ask with <see cref="Duplicate"/> before
    /// selling again.</para>
    /// <para>Amounts are decimal SAR text (<c>"10.00"</c>, at most two decimals); ECR references are
    /// 14 digits, the first 8 being the cash register number.</para>
    /// </remarks>
    public sealed class Terminal : IDisposable
    {
        private readonly TerminalHandle _handle;
        private int _disposed;

        /// <summary>
        /// State changes of this terminal (e.g. <c>waitingForCard</c>). Raised on a library thread; see
        /// <see cref="TerminalEventArgs"/>. An exception thrown by a handler is logged
        /// (<see cref="System.Diagnostics.Trace"/>) and ignored.
        /// </summary>
        public event EventHandler<TerminalEventArgs> StateChanged;

        private Terminal(TerminalHandle handle)
        {
            _handle = handle;
            // The delegate lives as long as the native handle (the handle object references it), and
            // is unregistered before the handle is freed.
            NativeMethods.EventCallback callback = OnNativeEvent;
            _handle.Callback = callback;
            NamiLibrary.Check(NativeMethods.nami_terminal_set_event_callback(_handle, callback, IntPtr.Zero));
        }

        /// <summary>A terminal at <paramref name="host"/>:<paramref name="port"/>. The link opens on the first call (or <see cref="Connect"/>).</summary>
        /// <param name="host">An IP address or host name.</param>
        /// <param name="port">The terminal's TCP port, 1-65535.</param>
        /// <param name="options">Options (timeouts, LRC, logging), or null for the defaults.</param>
        /// <returns>The terminal; dispose it when done.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="host"/> is null.</exception>
        /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is not 1-65535.</exception>
        /// <exception cref="InvalidInputException">An option or the host is not valid.</exception>
        public static Terminal ConnectTcp(string host, int port, NamiOptions options = null)
        {
            if (host == null) throw new ArgumentNullException("host");
            if (port < 1 || port > 65535) throw new ArgumentOutOfRangeException("port", port, "must be 1-65535");
            NamiLibrary.EnsureCompatible();
            TerminalHandle h;
            var status = NativeMethods.nami_terminal_tcp_new(Utf8.Z(host), (ushort)port, OptionsJson(options), out h);
            return Open(status, h);
        }

        /// <summary>A terminal on a serial port (the terminals use 115200 8-N-1, the defaults).</summary>
        /// <param name="path">The port: <c>COM3</c> on Windows, <c>/dev/ttyACM0</c> elsewhere.</param>
        /// <param name="baudRate">9600, 19200, 38400, 57600 or 115200.</param>
        /// <param name="parity">The parity.</param>
        /// <param name="dataBits">7 or 8.</param>
        /// <param name="stopBits">1 or 2.</param>
        /// <param name="options">Options (timeouts, LRC, logging, <c>ReconnectSerial</c>), or null for the defaults.</param>
        /// <returns>The terminal; dispose it when done.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="path"/> is null.</exception>
        /// <exception cref="InvalidInputException">A setting or an option is not valid.</exception>
        public static Terminal ConnectSerial(string path, int baudRate = 115200, Parity parity = Parity.None,
            int dataBits = 8, int stopBits = 1, NamiOptions options = null)
        {
            if (path == null) throw new ArgumentNullException("path");
            if (baudRate <= 0) throw new ArgumentOutOfRangeException("baudRate", baudRate, "must be positive");
            NamiLibrary.EnsureCompatible();
            TerminalHandle h;
            var status = NativeMethods.nami_terminal_serial_new(Utf8.Z(path), (uint)baudRate, (int)parity, dataBits,
                stopBits, OptionsJson(options), out h);
            return Open(status, h);
        }

        private static byte[] OptionsJson(NamiOptions options)
        {
            return options == null ? null : Utf8.Z(options.ToJson());
        }

        private static Terminal Open(NamiStatus status, TerminalHandle h)
        {
            if (status != NamiStatus.Ok || h == null || h.IsInvalid)
            {
                var message = Utf8.LastError();
                if (h != null) h.Dispose();
                throw NamiException.From(status == NamiStatus.Ok ? NamiStatus.Internal : status, message, null, null);
            }
            try { return new Terminal(h); }
            catch { h.Dispose(); throw; }
        }

        private void OnNativeEvent(IntPtr eventJson, IntPtr userData)
        {
            EventRelay.Raise(this, StateChanged, eventJson);
        }

        /// <summary>Opens the link now (calls open it on demand anyway).</summary>
        /// <exception cref="UnableToConnectException">The terminal cannot be reached.</exception>
        /// <exception cref="ObjectDisposedException">The terminal was disposed.</exception>
        public void Connect()
        {
            NamiLibrary.Check(NativeMethods.nami_terminal_connect(Handle()));
        }

        /// <summary>Closes the link (a running call ends with <see cref="CancelledException"/>). The registration is kept; the next call re-opens the link.</summary>
        /// <exception cref="ObjectDisposedException">The terminal was disposed.</exception>
        public void Disconnect()
        {
            NamiLibrary.Check(NativeMethods.nami_terminal_disconnect(Handle()));
        }

        /// <summary>
        /// Ends the call waiting on this terminal promptly: it throws <see cref="CancelledException"/>
        /// (with <see cref="NamiException.EcrReference"/> when a payment may have reached the terminal).
        /// Call it from another thread, or from a <see cref="StateChanged"/> handler. Does nothing when
        /// no call is running.
        /// </summary>
        /// <exception cref="ObjectDisposedException">The terminal was disposed.</exception>
        public void Cancel()
        {
            NamiLibrary.Check(NativeMethods.nami_terminal_cancel(Handle()));
        }

        /// <summary>REGISTER: the terminal returns the terminal ID that signs every later request. Needed once per terminal (and after it restarts).</summary>
        /// <param name="cashRegisterNo">The 8-digit cash register number.</param>
        /// <returns>The result; <see cref="TxnResult.TerminalId"/> is the terminal's ID.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="cashRegisterNo"/> is null.</exception>
        /// <exception cref="InvalidInputException">It is not 8 digits (<see cref="InvalidInputException.Field"/> <c>cashRegisterNo</c>).</exception>
        public TxnResult Register(string cashRegisterNo)
        {
            NotNull(cashRegisterNo, "cashRegisterNo");
            var z = Utf8.Z(cashRegisterNo);
            return Run((TerminalHandle h, ref NativeResult r) => NativeMethods.nami_terminal_register(h, z, ref r));
        }

        /// <summary>START_SESSION: opens a session on the terminal (before the day's transactions).</summary>
        /// <param name="cashRegisterNo">The 8-digit cash register number.</param>
        /// <returns>The result (<c>000</c>).</returns>
        public TxnResult StartSession(string cashRegisterNo)
        {
            NotNull(cashRegisterNo, "cashRegisterNo");
            return TransactBody(new JsonObject().Add("txnType", "START_SESSION").Add("cashRegisterNo", cashRegisterNo));
        }

        /// <summary>END_SESSION: closes the session.</summary>
        /// <param name="cashRegisterNo">The 8-digit cash register number.</param>
        /// <returns>The result (<c>000</c>).</returns>
        public TxnResult EndSession(string cashRegisterNo)
        {
            NotNull(cashRegisterNo, "cashRegisterNo");
            return TransactBody(new JsonObject().Add("txnType", "END_SESSION").Add("cashRegisterNo", cashRegisterNo));
        }

        /// <summary>PURCHASE of <paramref name="amount"/> SAR. Blocks until the card is read and the host answers.</summary>
        /// <param name="amount">Decimal SAR text, e.g. <c>"10.00"</c> (at most two decimals, more than zero).</param>
        /// <param name="ecrReference">A new 14-digit ECR reference (never reuse one for a new sale).</param>
        /// <param name="print">Whether the terminal prints the receipt.</param>
        /// <returns>The result, approved or declined (<see cref="TxnResult.Approved"/>).</returns>
        /// <exception cref="ArgumentNullException">An argument is null.</exception>
        /// <exception cref="InvalidAmountException">The amount is not valid (<c>Field</c> <c>amount</c>).</exception>
        /// <exception cref="InvalidEcrReferenceException">The ECR reference is not 14 digits (<c>Field</c> <c>ecrReferenceNo</c>).</exception>
        /// <exception cref="RegisterRequiredException">The terminal needs <see cref="Register"/> first.</exception>
        /// <exception cref="TerminalBusyException">Another call is running on this terminal.</exception>
        /// <exception cref="CancelledException"><see cref="Cancel"/> ended the wait.</exception>
        /// <exception cref="NamiTimeoutException">No reply within the deadline.</exception>
        /// <exception cref="OutcomeUnknownException">The link broke after the request was sent.</exception>
        public TxnResult Purchase(string amount, string ecrReference, bool print = true)
        {
            NotNull(amount, "amount");
            NotNull(ecrReference, "ecrReference");
            var a = Utf8.Z(amount);
            var e = Utf8.Z(ecrReference);
            int p = print ? 1 : 0;
            return Run((TerminalHandle h, ref NativeResult r) => NativeMethods.nami_terminal_purchase(h, a, e, p, ref r));
        }

        /// <summary>PURCHASE of a decimal amount (written with the invariant culture; more than two decimals is refused, never rounded).</summary>
        /// <param name="amount">The amount in SAR.</param>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <param name="print">Whether the terminal prints the receipt.</param>
        /// <returns>The result, approved or declined.</returns>
        public TxnResult Purchase(decimal amount, string ecrReference, bool print = true)
        {
            return Purchase(amount.ToString(CultureInfo.InvariantCulture), ecrReference, print);
        }

        /// <summary>REFUND of <paramref name="amount"/> SAR for an earlier sale, found by its RRN.</summary>
        /// <param name="amount">Decimal SAR text, at most the original amount.</param>
        /// <param name="rrn">The original sale's retrieval reference number (12 characters, <see cref="TxnResult.Rrn"/>).</param>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <param name="originalDate">The original sale's date <c>ddMMyy</c>, or null.</param>
        /// <param name="approvalCode">The original sale's approval code (6 characters), or null.</param>
        /// <param name="print">Whether the terminal prints the receipt.</param>
        /// <returns>The result, approved or declined.</returns>
        public TxnResult Refund(string amount, string rrn, string ecrReference, string originalDate = null,
            string approvalCode = null, bool print = true)
        {
            NotNull(amount, "amount");
            NotNull(rrn, "rrn");
            NotNull(ecrReference, "ecrReference");
            var a = Utf8.Z(amount);
            var n = Utf8.Z(rrn);
            var d = Utf8.Z(originalDate);
            var c = Utf8.Z(approvalCode);
            var e = Utf8.Z(ecrReference);
            int p = print ? 1 : 0;
            return Run((TerminalHandle h, ref NativeResult r) =>
                NativeMethods.nami_terminal_refund(h, a, n, d, c, e, p, ref r));
        }

        /// <summary>REVERSAL of the terminal's last transaction.</summary>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <param name="print">Whether the terminal prints the receipt.</param>
        /// <returns>The result (<c>400</c> when reversed, <c>480</c> when there is nothing to reverse).</returns>
        public TxnResult Reversal(string ecrReference, bool print = true)
        {
            NotNull(ecrReference, "ecrReference");
            var e = Utf8.Z(ecrReference);
            int p = print ? 1 : 0;
            return Run((TerminalHandle h, ref NativeResult r) => NativeMethods.nami_terminal_reversal(h, e, p, ref r));
        }

        /// <summary>RECONCILIATION: end-of-day settlement; the totals are in <see cref="TxnResult.RawJson"/>.</summary>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <param name="print">Whether the terminal prints the report.</param>
        /// <returns>The result (<c>500</c>).</returns>
        public TxnResult Reconciliation(string ecrReference, bool print = true)
        {
            NotNull(ecrReference, "ecrReference");
            var e = Utf8.Z(ecrReference);
            int p = print ? 1 : 0;
            return Run((TerminalHandle h, ref NativeResult r) =>
                NativeMethods.nami_terminal_reconciliation(h, e, p, ref r));
        }

        /// <summary>
        /// DUPLICATE: asks the terminal for an earlier transaction by its ECR reference — the way to learn
        /// the outcome of a payment left unknown (<see cref="NamiException.EcrReference"/>).
        /// </summary>
        /// <param name="previousEcrReference">The earlier request's ECR reference (14 digits, or its last 6).</param>
        /// <param name="ecrReference">A new 14-digit ECR reference for this request.</param>
        /// <returns>The earlier transaction's reply (<c>187</c> when the terminal has none).</returns>
        public TxnResult Duplicate(string previousEcrReference, string ecrReference)
        {
            NotNull(previousEcrReference, "previousEcrReference");
            NotNull(ecrReference, "ecrReference");
            var prev = Utf8.Z(previousEcrReference);
            var e = Utf8.Z(ecrReference);
            return Run((TerminalHandle h, ref NativeResult r) => NativeMethods.nami_terminal_duplicate(h, prev, e, ref r));
        }

        /// <summary>CHECK_STATUS: whether the terminal is ready.</summary>
        /// <param name="ecrReference">A new 14-digit ECR reference.</param>
        /// <returns>The result (<c>000</c>).</returns>
        public TxnResult CheckStatus(string ecrReference)
        {
            NotNull(ecrReference, "ecrReference");
            return TransactBody(new JsonObject().Add("txnType", "CHECK_STATUS").Add("ecrReferenceNo", ecrReference));
        }

        /// <summary>
        /// Any transaction type, described by a REST <c>paymentRequest</c> body, e.g.
        /// <c>{"txnType":"PRE_AUTHORIZATION","amount":"25.00","ecrReferenceNo":"12345678000042"}</c>.
        /// Validation errors name the REST field.
        /// </summary>
        /// <param name="paymentRequestJson">The <c>paymentRequest</c> JSON object.</param>
        /// <returns>The result, approved or declined.</returns>
        public TxnResult Transact(string paymentRequestJson)
        {
            NotNull(paymentRequestJson, "paymentRequestJson");
            var j = Utf8.Z(paymentRequestJson);
            return Run((TerminalHandle h, ref NativeResult r) => NativeMethods.nami_terminal_transact(h, j, ref r));
        }

        private TxnResult TransactBody(JsonObject body)
        {
            return Transact(body.ToString());
        }

        private delegate NamiStatus Operation(TerminalHandle handle, ref NativeResult result);

        /// <summary>Runs one typed call: reads the NamiResult, frees it whatever the status, maps a failure.</summary>
        private TxnResult Run(Operation op)
        {
            var h = Handle();
            var r = new NativeResult();
            NamiStatus status;
            string error = null, unknown = null;
            TxnResult result;
            try
            {
                status = op(h, ref r);
                if (status != NamiStatus.Ok) error = Utf8.LastError();
                result = TxnResult.FromNative(ref r);
                unknown = Utf8.Read(r.UnknownOutcomeEcrReference);
            }
            finally
            {
                NativeMethods.nami_result_free(ref r);
            }
            if (status != NamiStatus.Ok)
            {
                var message = string.IsNullOrEmpty(error) ? result.Message : error;
                throw NamiException.From(status, message, unknown, null);
            }
            return result;
        }

        private TerminalHandle Handle()
        {
            if (_disposed != 0 || _handle.IsClosed) throw new ObjectDisposedException("Terminal");
            return _handle;
        }

        private static void NotNull(object value, string name)
        {
            if (value == null) throw new ArgumentNullException(name);
        }

        /// <summary>
        /// Cancels a running call, stops the events, closes the link and frees the native terminal. Safe
        /// to call more than once. Not from inside a <see cref="StateChanged"/> handler.
        /// </summary>
        /// <exception cref="InvalidOperationException">Called from a <see cref="StateChanged"/> handler.</exception>
        public void Dispose()
        {
            if (EventRelay.InCallback)
                throw new InvalidOperationException("a Terminal cannot be disposed from inside its StateChanged handler");
            if (System.Threading.Interlocked.Exchange(ref _disposed, 1) != 0) return;
            if (!_handle.IsClosed && !_handle.IsInvalid)
            {
                NativeMethods.nami_terminal_cancel(_handle);
                // After this returns the callback is never called again.
                NativeMethods.nami_terminal_set_event_callback(_handle, null, IntPtr.Zero);
            }
            // Freed now, or when a call still running on another thread returns (SafeHandle counts them).
            _handle.Dispose();
        }
    }
}
