using System;
using System.Collections.Generic;

namespace Nami
{
    /// <summary>
    /// The outcome of a transaction the terminal answered, approved or declined: check
    /// <see cref="Approved"/> (a declined payment is a result, not an exception). Failures where the
    /// terminal did not answer are exceptions (<see cref="NamiException"/>).
    /// </summary>
    public sealed class TxnResult
    {
        private Dictionary<string, object> _fields;

        /// <summary>True when the terminal approved (decided by its response code).</summary>
        public bool Approved { get; private set; }

        /// <summary>The transaction type, e.g. <c>PURCHASE</c>.</summary>
        public string TxnType { get; private set; }

        /// <summary>The terminal's response code as sent: <c>000</c> approved, <c>116</c> declined, <c>800</c> registered, ...</summary>
        public string ResponseCode { get; private set; }

        /// <summary>The terminal's message, e.g. <c>APPROVED</c>, <c>DECLINED</c>.</summary>
        public string Message { get; private set; }

        /// <summary>The ECR reference of the request.</summary>
        public string EcrReference { get; private set; }

        /// <summary>The terminal ID the request was signed with (for REGISTER: the one the terminal returned).</summary>
        public string TerminalId { get; private set; }

        /// <summary>The request's signature (64 hex digits), when it had one.</summary>
        public string Signature { get; private set; }

        /// <summary>The retrieval reference number of the reply (keep it for refunds), or null.</summary>
        public string Rrn { get; private set; }

        /// <summary>The approval code of the reply, or null.</summary>
        public string ApprovalCode { get; private set; }

        /// <summary>The card number, masked (first 6 and last 4 digits), or null. A full card number never leaves the library.</summary>
        public string MaskedPan { get; private set; }

        /// <summary>
        /// Every named field of the reply as a JSON object (as the REST API's <c>parsedTransaction</c>,
        /// plus <c>approved</c>): e.g. <c>cardNumber</c>, <c>rrn</c>, <c>approvalCode</c>, reconciliation totals.
        /// </summary>
        public string RawJson { get; private set; }

        /// <summary>
        /// <see cref="Middleware"/> only: the whole REST response body; null for <see cref="Terminal"/>.
        /// </summary>
        public string ResponseJson { get; private set; }

        /// <summary>
        /// <see cref="Middleware"/> only: true when this is the stored result of an earlier request with
        /// the same ECR reference (nothing was sent to the terminal).
        /// </summary>
        public bool Replay { get; private set; }

        private TxnResult() { }

        /// <summary>
        /// One named field of the reply (<see cref="RawJson"/>) as text, e.g. <c>GetField("stan")</c>;
        /// null when the reply has no such field.
        /// </summary>
        /// <param name="name">The field's name as in <see cref="RawJson"/>.</param>
        /// <returns>The field's value as text, or null.</returns>
        public string GetField(string name)
        {
            if (name == null) throw new ArgumentNullException("name");
            if (_fields == null) _fields = Json.TryParseObject(RawJson) ?? new Dictionary<string, object>();
            return Json.Text(_fields, name);
        }

        /// <summary>A short description for logs (no card data beyond the masked PAN).</summary>
        /// <returns>Type, response code, message and approval.</returns>
        public override string ToString()
        {
            return TxnType + " " + ResponseCode + " " + Message + (Approved ? " (approved)" : " (not approved)");
        }

        /// <summary>Copies a NamiResult the terminal filled (the caller frees it).</summary>
        internal static TxnResult FromNative(ref NativeResult r)
        {
            return new TxnResult
            {
                Approved = r.Approved != 0,
                TxnType = Utf8.Read(r.TxnType),
                ResponseCode = Utf8.Read(r.ResponseCode),
                Message = Utf8.Read(r.Message),
                EcrReference = Utf8.Read(r.EcrReference),
                TerminalId = Utf8.Read(r.TerminalId),
                Signature = Utf8.Read(r.Signature),
                Rrn = Utf8.Read(r.Rrn),
                ApprovalCode = Utf8.Read(r.ApprovalCode),
                MaskedPan = Utf8.Read(r.MaskedPan),
                RawJson = Utf8.Read(r.RawJson),
            };
        }

        /// <summary>A REST transaction response whose <c>statusCode</c> is <c>200</c> (the terminal answered).</summary>
        internal static TxnResult FromRest(string txnType, Dictionary<string, object> body, string responseJson)
        {
            object parsedValue;
            Dictionary<string, object> parsed = null;
            if (body.TryGetValue("parsedTransaction", out parsedValue)) parsed = parsedValue as Dictionary<string, object>;
            if (parsed == null) parsed = new Dictionary<string, object>();
            parsed["approved"] = Json.Bool(body, "approved");
            return new TxnResult
            {
                Approved = Json.Bool(body, "approved"),
                TxnType = txnType,
                ResponseCode = Json.Text(body, "responseCode"),
                Message = Json.Text(body, "statusMessage"),
                EcrReference = Json.Text(body, "ecrReferenceNo"),
                TerminalId = Json.Text(body, "terminalId"),
                Signature = Json.Text(body, "signature"),
                Rrn = Json.Text(parsed, "rrn"),
                ApprovalCode = Json.Text(parsed, "approvalCode"),
                MaskedPan = Json.Text(parsed, "cardNumber"),
                RawJson = Json.Write(parsed),
                ResponseJson = responseJson,
                Replay = Json.Bool(body, "replay"),
                _fields = parsed,
            };
        }
    }
}
