using System;
using System.Globalization;
using System.Text;

namespace Nami
{
    /// <summary>Parity of a serial link (the terminals use none: 115200 8-N-1).</summary>
    public enum Parity
    {
        /// <summary>No parity bit.</summary>
        None = 0,
        /// <summary>Odd parity.</summary>
        Odd = 1,
        /// <summary>Even parity.</summary>
        Even = 2,
    }

    /// <summary>
    /// Options of a <see cref="Terminal"/> or a <see cref="Middleware"/>. Every property left null keeps
    /// the library's default. <see cref="Terminal"/> accepts the timeouts, <see cref="Lrc"/>,
    /// <see cref="Layout"/>, <see cref="WaitWhenBusy"/>, <see cref="AutoStartSession"/>,
    /// <see cref="ReconnectSerial"/>, <see cref="LogLevel"/> and <see cref="LogFile"/>; the others
    /// are for <see cref="Middleware"/> only (a terminal refuses them with an
    /// <see cref="InvalidInputException"/> naming the option).
    /// </summary>
    public sealed class NamiOptions
    {
        /// <summary>Middleware: where <c>journal.sqlite</c> and <c>state.sqlite</c> live (default: <c>%PROGRAMDATA%\Nami</c> on Windows, <c>~/.local/share/nami</c> on Linux). One middleware per directory.</summary>
        public string StateDir { get; set; }

        /// <summary><c>off</c>, <c>error</c>, <c>warn</c>, <c>info</c>, <c>debug</c> or <c>trace</c>.</summary>
        public string LogLevel { get; set; }

        /// <summary>A file to log to (default: standard error). Card numbers are never logged in full.</summary>
        public string LogFile { get; set; }

        /// <summary>Middleware: whether the terminal prints a receipt when a request does not say (default true).</summary>
        public bool? DefaultPrint { get; set; }

        /// <summary>Deadline of card-present transactions, in seconds (default 150).</summary>
        public int? CardPresentSeconds { get; set; }

        /// <summary>Deadline of settlement and reports, in seconds (default 60).</summary>
        public int? SettlementSeconds { get; set; }

        /// <summary>Deadline of admin transactions (REGISTER, sessions, status), in seconds (default 30).</summary>
        public int? AdminSeconds { get; set; }

        /// <summary>The LRC of requests: <c>skyband</c> (default), <c>xor</c> or <c>none</c>.</summary>
        public string Lrc { get; set; }

        /// <summary>The reply layout: <c>3.5</c> (default) or <c>2020</c>.</summary>
        public string Layout { get; set; }

        /// <summary>Wait for a running transaction instead of failing with <see cref="TerminalBusyException"/>.</summary>
        public bool? WaitWhenBusy { get; set; }

        /// <summary>Send START_SESSION right after a successful REGISTER.</summary>
        public bool? AutoStartSession { get; set; }

        /// <summary>Re-open a serial port that vanished and came back.</summary>
        public bool? ReconnectSerial { get; set; }

        /// <summary>Middleware: seconds between recovery rounds of unknown outcomes.</summary>
        public int? RecoveryIntervalSeconds { get; set; }

        /// <summary>Middleware: how old an unknown outcome must be before "not found" is believed.</summary>
        public int? RecoveryGraceSeconds { get; set; }

        /// <summary>Middleware: how long a result is replayed for a repeated request (0 turns replay off; default 24 h).</summary>
        public int? IdempotencyWindowSeconds { get; set; }

        /// <summary>Middleware: how long a vanished COM port is waited for.</summary>
        public int? ComReconnectTimeoutSeconds { get; set; }

        /// <summary>Middleware: re-open the connections saved by an earlier run at start.</summary>
        public bool? RestoreConnections { get; set; }

        /// <summary>Middleware: the memory cap reported by the health status, in MB.</summary>
        public int? MemoryMaxMb { get; set; }

        /// <summary>The options as the C ABI's <c>options_json</c>.</summary>
        /// <returns>A JSON object with the properties that are set.</returns>
        public string ToJson()
        {
            var o = new JsonObject()
                .Add("stateDir", StateDir)
                .Add("logLevel", LogLevel)
                .Add("logFile", LogFile)
                .Add("defaultPrint", DefaultPrint);
            if (CardPresentSeconds.HasValue || SettlementSeconds.HasValue || AdminSeconds.HasValue)
            {
                o.Add("timeouts", new JsonObject()
                    .Add("cardPresentSeconds", CardPresentSeconds)
                    .Add("settlementSeconds", SettlementSeconds)
                    .Add("adminSeconds", AdminSeconds));
            }
            return o.Add("lrc", Lrc)
                .Add("layout", Layout)
                .Add("waitWhenBusy", WaitWhenBusy)
                .Add("autoStartSession", AutoStartSession)
                .Add("reconnectSerial", ReconnectSerial)
                .Add("recoveryIntervalSeconds", RecoveryIntervalSeconds)
                .Add("recoveryGraceSeconds", RecoveryGraceSeconds)
                .Add("idempotencyWindowSeconds", IdempotencyWindowSeconds)
                .Add("comReconnectTimeoutSeconds", ComReconnectTimeoutSeconds)
                .Add("restoreConnections", RestoreConnections)
                .Add("memoryMaxMb", MemoryMaxMb)
                .ToString();
        }
    }

    /// <summary>The loaded native library (nami.dll / libnami.so / libnami.dylib).</summary>
    public static class NamiLibrary
    {
        private static volatile bool _checked;

        /// <summary>The library's version, e.g. <c>0.1.0</c>.</summary>
        public static string Version { get { return Utf8.Read(NativeMethods.nami_version()); } }

        /// <summary>The C ABI version of the loaded library (this binding needs <see cref="ExpectedAbiVersion"/>).</summary>
        public static uint AbiVersion { get { return NativeMethods.nami_abi_version(); } }

        /// <summary>The C ABI version this binding was written for.</summary>
        public static uint ExpectedAbiVersion { get { return NativeMethods.ExpectedAbiVersion; } }

        /// <summary>
        /// Checks once that the loaded library speaks this binding's ABI; throws
        /// <see cref="NamiException"/> otherwise (a <see cref="DllNotFoundException"/> when the library
        /// is not next to the application nor on the library path).
        /// </summary>
        public static void EnsureCompatible()
        {
            if (_checked) return;
            var abi = NativeMethods.nami_abi_version();
            if (abi != NativeMethods.ExpectedAbiVersion)
            {
                throw new NamiException(NamiStatus.Error, string.Format(CultureInfo.InvariantCulture,
                    "the loaded nami library has ABI version {0}; this binding needs {1}", abi,
                    NativeMethods.ExpectedAbiVersion));
            }
            _checked = true;
        }

        /// <summary>Throws the typed exception of a failed status, reading the thread's last error message.</summary>
        internal static void Check(NamiStatus status)
        {
            if (status != NamiStatus.Ok) throw NamiException.From(status, Utf8.LastError(), null, null);
        }

        internal static string Print(bool print) { return print ? "1" : "0"; }
    }
}
