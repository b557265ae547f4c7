// Every P/Invoke import of the C ABI (nami-ffi/include/nami.h), the native structs, the UTF-8
// marshalling and the SafeHandles. Nothing here is public: the public API is Terminal,
// Middleware, TxnResult, the exceptions and the events.
//
// Portable subset: C# 7.2 and the netstandard2.0 / .NET Framework 4.6.1 API surface. Strings are
// marshalled by hand (byte[] + NUL in, Marshal.Copy + Encoding.UTF8 out) because .NET Framework
// has neither UnmanagedType.LPUTF8Str nor Marshal.PtrToStringUTF8.
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Nami
{
    /// <summary>Imports of the C ABI. Every function is cdecl, also in 32-bit Windows builds.</summary>
    internal static class NativeMethods
    {
        /// <summary>
        /// "nami" resolves to nami.dll on Windows, libnami.so on Linux (Mono and .NET), libnami.dylib
        /// on macOS, looked up next to the application first.
        /// </summary>
        internal const string Lib = "nami";

        /// <summary>NAMI_ABI_VERSION of the header this binding was written against.</summary>
        internal const uint ExpectedAbiVersion = 1;

        /// <summary>NamiEventCallback: (const char *event_json, void *user_data).</summary>
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void EventCallback(IntPtr eventJson, IntPtr userData);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr nami_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern uint nami_abi_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr nami_last_error_message();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void nami_string_free(IntPtr s);

        // ---- NamiClient (the middleware service) ----

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_client_new(byte[] optionsJson, out ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void nami_client_free(IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_call(ClientHandle client, byte[] endpoint, byte[] requestJson,
            out IntPtr responseJson);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_cancel(ClientHandle client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_set_event_callback(ClientHandle client, EventCallback callback,
            IntPtr userData);

        // ---- NamiTerminal (one terminal, typed functions) ----

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_tcp_new(byte[] host, ushort port, byte[] optionsJson,
            out TerminalHandle terminal);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_serial_new(byte[] path, uint baudRate, int parity,
            int dataBits, int stopBits, byte[] optionsJson, out TerminalHandle terminal);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void nami_terminal_free(IntPtr terminal);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_connect(TerminalHandle terminal);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_disconnect(TerminalHandle terminal);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_cancel(TerminalHandle terminal);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_set_event_callback(TerminalHandle terminal,
            EventCallback callback, IntPtr userData);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_register(TerminalHandle terminal, byte[] cashRegisterNo,
            ref NativeResult result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_purchase(TerminalHandle terminal, byte[] amountSar,
            byte[] ecrReference, int print, ref NativeResult result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_refund(TerminalHandle terminal, byte[] amountSar, byte[] rrn,
            byte[] originalDate, byte[] approvalCode, byte[] ecrReference, int print, ref NativeResult result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_reversal(TerminalHandle terminal, byte[] ecrReference,
            int print, ref NativeResult result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_reconciliation(TerminalHandle terminal, byte[] ecrReference,
            int print, ref NativeResult result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_duplicate(TerminalHandle terminal,
            byte[] previousEcrReference, byte[] ecrReference, ref NativeResult result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern NamiStatus nami_terminal_transact(TerminalHandle terminal, byte[] paymentRequestJson,
            ref NativeResult result);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void nami_result_free(ref NativeResult result);
    }

    /// <summary>
    /// struct NamiResult, field for field (int32_t then eleven char*): the same layout for 32- and
    /// 64-bit builds because only pointers change size.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeResult
    {
        internal int Approved;
        internal IntPtr TxnType;
        internal IntPtr ResponseCode;
        internal IntPtr Message;
        internal IntPtr EcrReference;
        internal IntPtr TerminalId;
        internal IntPtr Signature;
        internal IntPtr Rrn;
        internal IntPtr ApprovalCode;
        internal IntPtr MaskedPan;
        internal IntPtr RawJson;
        internal IntPtr UnknownOutcomeEcrReference;
    }

    /// <summary>UTF-8 both ways, by hand.</summary>
    internal static class Utf8
    {
        /// <summary>The NUL-terminated UTF-8 bytes of <paramref name="s"/>; null for null (a NULL pointer).</summary>
        internal static byte[] Z(string s)
        {
            if (s == null) return null;
            var n = Encoding.UTF8.GetByteCount(s);
            var buf = new byte[n + 1];
            Encoding.UTF8.GetBytes(s, 0, s.Length, buf, 0);
            return buf;
        }

        /// <summary>Copies a NUL-terminated UTF-8 string; null for a NULL pointer. Does not free it.</summary>
        internal static string Read(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int len = 0;
            while (Marshal.ReadByte(p, len) != 0) len++;
            if (len == 0) return "";
            var bytes = new byte[len];
            Marshal.Copy(p, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }

        /// <summary>Copies a string the caller owns and frees it with nami_string_free.</summary>
        internal static string Take(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            try { return Read(p); }
            finally { NativeMethods.nami_string_free(p); }
        }

        /// <summary>The calling thread's last error message (owned by the library: copied, never freed).</summary>
        internal static string LastError()
        {
            return Read(NativeMethods.nami_last_error_message()) ?? "";
        }
    }

    /// <summary>
    /// A NamiClient*. Released with nami_client_free; also keeps the event callback delegate alive
    /// for as long as the native handle exists.
    /// </summary>
    internal sealed class ClientHandle : SafeHandle
    {
        /// <summary>The delegate registered with nami_set_event_callback (kept alive by this reference).</summary>
        internal NativeMethods.EventCallback Callback;

        public ClientHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        protected override bool ReleaseHandle()
        {
            NativeMethods.nami_client_free(handle);
            GC.KeepAlive(Callback);
            Callback = null;
            return true;
        }
    }

    /// <summary>
    /// A NamiTerminal*. Released with nami_terminal_free; also keeps the event callback delegate
    /// alive for as long as the native handle exists.
    /// </summary>
    internal sealed class TerminalHandle : SafeHandle
    {
        /// <summary>The delegate registered with nami_terminal_set_event_callback.</summary>
        internal NativeMethods.EventCallback Callback;

        public TerminalHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        protected override bool ReleaseHandle()
        {
            NativeMethods.nami_terminal_free(handle);
            GC.KeepAlive(Callback);
            Callback = null;
            return true;
        }
    }
}
