using System;
using System.Collections.Generic;
using System.Diagnostics;

namespace Nami
{
    /// <summary>
    /// A state change of a terminal session, e.g. <c>waitingForCard</c> ("present card"),
    /// <c>responseReceived</c>, <c>reconnecting</c>; for the middleware also <c>outcomeResolved</c>.
    /// </summary>
    /// <remarks>
    /// Events are raised on a library thread (possibly the thread blocked in the transaction call):
    /// return quickly and marshal to the UI thread yourself (<c>Control.BeginInvoke</c>,
    /// <c>Dispatcher.BeginInvoke</c>, <c>SynchronizationContext.Post</c>). Calling <c>Cancel</c> from
    /// a handler is allowed; disposing the source from a handler is not.
    /// </remarks>
    public sealed class TerminalEventArgs : EventArgs
    {
        private readonly Dictionary<string, object> _fields;

        /// <summary>The event as the library sent it, a JSON object such as <c>{"event":"waitingForCard","terminal":"10.0.0.5:2345"}</c>.</summary>
        public string Json { get; private set; }

        /// <summary>The event's name (its <c>event</c> member): <c>connecting</c>, <c>connected</c>, <c>requestSent</c>,
        /// <c>waitingForCard</c>, <c>waitingForTerminal</c>, <c>responseReceived</c>, <c>registered</c>,
        /// <c>reconnecting</c>, <c>cableDisconnected</c>, <c>disconnected</c>, <c>outcomeResolved</c>.</summary>
        public string Event { get; private set; }

        /// <summary>The terminal it is about: <c>ip:port</c>, or the serial port; null when absent.</summary>
        public string Terminal { get; private set; }

        /// <summary>Creates event arguments from the library's JSON.</summary>
        /// <param name="json">The event JSON object.</param>
        public TerminalEventArgs(string json)
        {
            if (json == null) throw new ArgumentNullException("json");
            Json = json;
            _fields = Nami.Json.TryParseObject(json) ?? new Dictionary<string, object>();
            Event = Nami.Json.Text(_fields, "event");
            Terminal = Nami.Json.Text(_fields, "terminal");
        }

        /// <summary>Another member of the event as text (e.g. <c>responseCode</c>, <c>ecrReferenceNo</c>); null when absent.</summary>
        /// <param name="name">The member's name.</param>
        /// <returns>Its value as text, or null.</returns>
        public string GetField(string name)
        {
            if (name == null) throw new ArgumentNullException("name");
            return Nami.Json.Text(_fields, name);
        }

        /// <summary>The event JSON.</summary>
        /// <returns><see cref="Json"/>.</returns>
        public override string ToString() { return Json; }
    }

    /// <summary>Delivers native events to a .NET event without ever letting an exception reach native code.</summary>
    internal static class EventRelay
    {
        [ThreadStatic]
        private static int _depth;

        /// <summary>True on a thread that is running an event handler (disposing from there would deadlock).</summary>
        internal static bool InCallback { get { return _depth > 0; } }

        internal static void Raise(object sender, EventHandler<TerminalEventArgs> handler, IntPtr eventJson)
        {
            // Called by native code: nothing may escape (an exception unwinding through the Rust
            // frames would abort the process).
            try
            {
                if (handler == null) return;
                var json = Utf8.Read(eventJson);
                if (json == null) return;
                var args = new TerminalEventArgs(json);
                _depth++;
                try
                {
                    foreach (EventHandler<TerminalEventArgs> one in handler.GetInvocationList())
                    {
                        try { one(sender, args); }
                        catch (Exception e) { Report(e); }
                    }
                }
                finally { _depth--; }
            }
            catch (Exception e)
            {
                Report(e);
            }
        }

        private static void Report(Exception e)
        {
            try { Trace.TraceError("Nami: a StateChanged handler threw (ignored): " + e); }
            catch { /* nothing may escape */ }
        }
    }
}
