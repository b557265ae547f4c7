using System;

namespace Nami
{
    /// <summary>
    /// The status codes of the C ABI (<c>NamiStatus</c> in nami.h, an int32 on every platform).
    /// Every failure surfaces as a <see cref="NamiException"/> whose <see cref="NamiException.StatusCode"/>
    /// is one of these.
    /// </summary>
    public enum NamiStatus
    {
        /// <summary>Success; for a transaction this includes a declined payment (see <see cref="TxnResult.Approved"/>).</summary>
        Ok = 0,
        /// <summary>A value that is not valid, JSON that does not parse or has the wrong shape, an unknown option.</summary>
        InvalidArgument = 1,
        /// <summary>An unknown REST endpoint, or a journal entry that does not exist.</summary>
        NotFound = 2,
        /// <summary>The terminal is processing another transaction (<c>TERMINAL_BUSY</c>); nothing was sent.</summary>
        Busy = 3,
        /// <summary>No reply within the deadline (<c>TIMEOUT</c>); the outcome may be unknown.</summary>
        Timeout = 4,
        /// <summary>A cancel ended the call (<c>CANCELLED</c>); the outcome may be unknown.</summary>
        Cancelled = 5,
        /// <summary>The link broke after a financial request may have reached the terminal (<c>OUTCOME_UNKNOWN</c>).</summary>
        OutcomeUnknown = 6,
        /// <summary>The terminal needs REGISTER first (<c>REGISTER_REQUIRED</c>).</summary>
        RegisterRequired = 7,
        /// <summary>The serial device vanished (<c>CableDisconnected</c>).</summary>
        CableDisconnected = 8,
        /// <summary>The terminal could not be reached (<c>UnableToConnect</c>); nothing was sent.</summary>
        UnableToConnect = 9,
        /// <summary>An amount is not a valid decimal SAR amount (<c>INVALID_AMOUNT</c>).</summary>
        InvalidAmount = 10,
        /// <summary>An ECR reference is not 14 digits or does not start with a non-zero digit (<c>INVALID_ECR_REF</c>).</summary>
        InvalidEcrRef = 11,
        /// <summary>Any other failure (<c>ERROR</c>): a broken link during a non-financial exchange, a reply that is not one.</summary>
        Error = 12,
        /// <summary>A bug in the library; please report the message.</summary>
        Internal = 13,
    }

    /// <summary>
    /// The base of every error of the library: a <see cref="NamiStatus"/> and the library's message
    /// (validation messages name the field, as the REST API does).
    /// </summary>
    public class NamiException : Exception
    {
        /// <summary>The status code of the failure.</summary>
        public NamiStatus StatusCode { get; private set; }

        /// <summary>
        /// When the failure leaves the outcome of a financial request unknown (the card may have been
        /// charged): that request's ECR reference, to recover with DUPLICATE
        /// (<see cref="Terminal.Duplicate"/>). Never resend such a request with a new reference before
        /// knowing its outcome. Null when nothing is unknown.
        /// </summary>
        public string EcrReference { get; private set; }

        /// <summary>True when <see cref="EcrReference"/> names a request whose outcome is unknown.</summary>
        public bool IsOutcomeUnknown { get { return EcrReference != null; } }

        /// <summary>
        /// The REST response body when the error came from <see cref="Middleware"/> (the JSON the
        /// middleware answered, e.g. <c>{"statusCode":"TIMEOUT",...}</c>); null for <see cref="Terminal"/>.
        /// </summary>
        public string ResponseJson { get; private set; }

        /// <summary>Creates an exception with a status and a message.</summary>
        /// <param name="statusCode">The status of the failure.</param>
        /// <param name="message">What went wrong.</param>
        public NamiException(NamiStatus statusCode, string message) : this(statusCode, message, null, null) { }

        /// <summary>Creates an exception with every detail.</summary>
        /// <param name="statusCode">The status of the failure.</param>
        /// <param name="message">What went wrong.</param>
        /// <param name="ecrReference">The ECR reference of a request whose outcome is unknown, or null.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public NamiException(NamiStatus statusCode, string message, string ecrReference, string responseJson)
            : base(string.IsNullOrEmpty(message) ? statusCode.ToString() : message)
        {
            StatusCode = statusCode;
            EcrReference = string.IsNullOrEmpty(ecrReference) ? null : ecrReference;
            ResponseJson = responseJson;
        }

        /// <summary>The typed exception for a status (never called with <see cref="NamiStatus.Ok"/>).</summary>
        internal static NamiException From(NamiStatus status, string message, string ecrReference, string responseJson)
        {
            switch (status)
            {
                case NamiStatus.InvalidArgument:
                    return new InvalidInputException(status, message, responseJson);
                case NamiStatus.InvalidAmount:
                    return new InvalidAmountException(message, responseJson);
                case NamiStatus.InvalidEcrRef:
                    return new InvalidEcrReferenceException(message, responseJson);
                case NamiStatus.NotFound:
                    return new NotFoundException(message, responseJson);
                case NamiStatus.Busy:
                    return new TerminalBusyException(message, responseJson);
                case NamiStatus.Timeout:
                    return new NamiTimeoutException(message, ecrReference, responseJson);
                case NamiStatus.Cancelled:
                    return new CancelledException(message, ecrReference, responseJson);
                case NamiStatus.OutcomeUnknown:
                    return new OutcomeUnknownException(message, ecrReference, responseJson);
                case NamiStatus.RegisterRequired:
                    return new RegisterRequiredException(message, responseJson);
                case NamiStatus.CableDisconnected:
                    return new CableDisconnectedException(message, ecrReference, responseJson);
                case NamiStatus.UnableToConnect:
                    return new UnableToConnectException(message, responseJson);
                case NamiStatus.Internal:
                    return new NamiInternalException(message, responseJson);
                default:
                    return new NamiException(status, message, ecrReference, responseJson);
            }
        }

        /// <summary>
        /// The status of a middleware <c>statusCode</c> (REST body), as the C ABI maps them:
        /// <c>TIMEOUT</c> → <see cref="NamiStatus.Timeout"/>, <c>INVALID_*</c> → invalid input, ...
        /// </summary>
        internal static NamiStatus StatusOfCode(string code)
        {
            switch (code)
            {
                case "INVALID_AMOUNT": return NamiStatus.InvalidAmount;
                case "INVALID_ECR_REF": return NamiStatus.InvalidEcrRef;
                case "REGISTER_REQUIRED": return NamiStatus.RegisterRequired;
                case "TERMINAL_BUSY": return NamiStatus.Busy;
                case "TIMEOUT": return NamiStatus.Timeout;
                case "CANCELLED": return NamiStatus.Cancelled;
                case "OUTCOME_UNKNOWN": return NamiStatus.OutcomeUnknown;
                case "CableDisconnected": return NamiStatus.CableDisconnected;
                case "UnableToConnect": return NamiStatus.UnableToConnect;
                default:
                    return code != null && code.StartsWith("INVALID_", StringComparison.Ordinal)
                        ? NamiStatus.InvalidArgument
                        : NamiStatus.Error;
            }
        }
    }

    /// <summary>
    /// Bad input: nothing was sent to the terminal. <see cref="Field"/> names the offending field as
    /// the REST API spells it (<c>amount</c>, <c>ecrReferenceNo</c>, <c>cashRegisterNo</c>,
    /// <c>paymentRequest.amount</c>).
    /// </summary>
    public class InvalidInputException : NamiException
    {
        /// <summary>The field the message names (the first <c>`name`</c> in it), or null when it names none.</summary>
        public string Field { get; private set; }

        /// <summary>Creates the exception; the field is read from the message.</summary>
        /// <param name="statusCode">InvalidArgument, InvalidAmount or InvalidEcrRef.</param>
        /// <param name="message">The library's message, e.g. <c>INVALID_AMOUNT: `amount` has more than two decimals</c>.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public InvalidInputException(NamiStatus statusCode, string message, string responseJson)
            : base(statusCode, message, null, responseJson)
        {
            Field = FieldOf(message);
        }

        /// <summary>The first backquoted name of a message (the library's convention for the field).</summary>
        internal static string FieldOf(string message)
        {
            if (message == null) return null;
            int start = message.IndexOf('`');
            if (start < 0) return null;
            int end = message.IndexOf('`', start + 1);
            if (end <= start + 1) return null;
            return message.Substring(start + 1, end - start - 1);
        }
    }

    /// <summary>An amount that is not a valid decimal SAR amount (<c>INVALID_AMOUNT</c>).</summary>
    public sealed class InvalidAmountException : InvalidInputException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message, naming the field.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public InvalidAmountException(string message, string responseJson)
            : base(NamiStatus.InvalidAmount, message, responseJson) { }
    }

    /// <summary>An ECR reference that is not 14 digits or starts with 0 (<c>INVALID_ECR_REF</c>).</summary>
    public sealed class InvalidEcrReferenceException : InvalidInputException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message, naming the field.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public InvalidEcrReferenceException(string message, string responseJson)
            : base(NamiStatus.InvalidEcrRef, message, responseJson) { }
    }

    /// <summary>An unknown REST endpoint, or a journal entry that does not exist (HTTP 404).</summary>
    public sealed class NotFoundException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">What was not found.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public NotFoundException(string message, string responseJson)
            : base(NamiStatus.NotFound, message, null, responseJson) { }
    }

    /// <summary>The terminal needs REGISTER first (<c>REGISTER_REQUIRED</c>); nothing was charged.</summary>
    public sealed class RegisterRequiredException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public RegisterRequiredException(string message, string responseJson)
            : base(NamiStatus.RegisterRequired, message, null, responseJson) { }
    }

    /// <summary>The terminal is processing another transaction (<c>TERMINAL_BUSY</c>); nothing was sent.</summary>
    public sealed class TerminalBusyException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public TerminalBusyException(string message, string responseJson)
            : base(NamiStatus.Busy, message, null, responseJson) { }
    }

    /// <summary>
    /// No reply within the deadline (<c>TIMEOUT</c>). When <see cref="NamiException.EcrReference"/> is
    /// set, the request may have been processed: recover it with DUPLICATE.
    /// </summary>
    public sealed class NamiTimeoutException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message.</param>
        /// <param name="ecrReference">The ECR reference whose outcome is unknown, or null.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public NamiTimeoutException(string message, string ecrReference, string responseJson)
            : base(NamiStatus.Timeout, message, ecrReference, responseJson) { }
    }

    /// <summary>
    /// A cancel (<see cref="Terminal.Cancel"/>, <see cref="Middleware.Cancel()"/>) ended the call
    /// (<c>CANCELLED</c>). When <see cref="NamiException.EcrReference"/> is set, the request may have
    /// reached the terminal: recover it with DUPLICATE.
    /// </summary>
    public sealed class CancelledException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message.</param>
        /// <param name="ecrReference">The ECR reference whose outcome is unknown, or null.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public CancelledException(string message, string ecrReference, string responseJson)
            : base(NamiStatus.Cancelled, message, ecrReference, responseJson) { }
    }

    /// <summary>
    /// The link broke after a financial request may have reached the terminal (<c>OUTCOME_UNKNOWN</c>).
    /// It was not resent. Recover it with DUPLICATE using <see cref="NamiException.EcrReference"/>
    /// (the middleware does that by itself).
    /// </summary>
    public sealed class OutcomeUnknownException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message.</param>
        /// <param name="ecrReference">The ECR reference whose outcome is unknown.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public OutcomeUnknownException(string message, string ecrReference, string responseJson)
            : base(NamiStatus.OutcomeUnknown, message, ecrReference, responseJson) { }
    }

    /// <summary>The serial device vanished (<c>CableDisconnected</c>); see <see cref="NamiException.EcrReference"/>.</summary>
    public sealed class CableDisconnectedException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message.</param>
        /// <param name="ecrReference">The ECR reference whose outcome is unknown, or null.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public CableDisconnectedException(string message, string ecrReference, string responseJson)
            : base(NamiStatus.CableDisconnected, message, ecrReference, responseJson) { }
    }

    /// <summary>The terminal could not be reached (<c>UnableToConnect</c>); nothing was sent.</summary>
    public sealed class UnableToConnectException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public UnableToConnectException(string message, string responseJson)
            : base(NamiStatus.UnableToConnect, message, null, responseJson) { }
    }

    /// <summary>A bug in the library (a caught panic or an internal failure); please report the message.</summary>
    public sealed class NamiInternalException : NamiException
    {
        /// <summary>Creates the exception.</summary>
        /// <param name="message">The library's message.</param>
        /// <param name="responseJson">The middleware's response body, or null.</param>
        public NamiInternalException(string message, string responseJson)
            : base(NamiStatus.Internal, message, null, responseJson) { }
    }
}
