// The nami-sim that run-tests.sh started: its terminal port and its HTTP control API.
using System;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using NUnit.Framework;

namespace Nami.Tests
{
    internal static class Sim
    {
        /// <summary>The simulated terminal's TCP port (NAMI_SIM_PORT).</summary>
        internal static int Port { get { return int.Parse(Env("NAMI_SIM_PORT")); } }

        /// <summary>The simulator's pseudo-terminal, opened as a serial port (NAMI_SIM_PTY).</summary>
        internal static string Pty { get { return Env("NAMI_SIM_PTY"); } }

        /// <summary>The control API, e.g. http://127.0.0.1:40000 (NAMI_SIM_CONTROL).</summary>
        internal static string Control { get { return Env("NAMI_SIM_CONTROL").TrimEnd('/'); } }

        private static string Env(string name)
        {
            var value = Environment.GetEnvironmentVariable(name);
            if (string.IsNullOrEmpty(value)) Assert.Fail(name + " is not set: run bindings/csharp/run-tests.sh");
            return value;
        }

        internal static string Get(string path)
        {
            using (var web = new WebClient())
                return web.DownloadString(Control + path);
        }

        internal static string Post(string path, string json)
        {
            using (var web = new WebClient())
            {
                web.Headers[HttpRequestHeader.ContentType] = "application/json";
                return web.UploadString(Control + path, "POST", json ?? "");
            }
        }

        internal static void CardTap(bool enabled)
        {
            Post("/card-tap", enabled ? "{\"enabled\":true}" : "{\"enabled\":false}");
        }

        internal static bool WaitingForCard()
        {
            return Get("/state").Replace(" ", "").Contains("\"waitingForCard\":true");
        }

        /// <summary>Waits until the simulator waits for a card tap (fails after 20 s).</summary>
        internal static void AwaitCardWait()
        {
            var clock = Stopwatch.StartNew();
            while (!WaitingForCard())
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(20)) Assert.Fail("the simulator never waited for a card");
                Thread.Sleep(20);
            }
        }

        /// <summary>Waits until no transaction waits for a card any more (after a cancel or card-tap off).</summary>
        internal static void AwaitIdle()
        {
            var clock = Stopwatch.StartNew();
            // An exchange outlives its card wait by its reply; the next request must not meet it (923).
            while (clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                var state = Get("/state").Replace(" ", "");
                if (!state.Contains("\"waitingForCard\":true") && !state.Contains("\"exchangeInProgress\":true")) break;
                Thread.Sleep(20);
            }
        }

        /// <summary>A local TCP port nothing listens on.</summary>
        internal static int ClosedPort()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }
    }

    /// <summary>ECR references: the cash register number and a counter shared by every test of the run.</summary>
    internal static class Ecr
    {
        private static int _counter;

        internal static string Next(string cashRegisterNo)
        {
            var n = Interlocked.Increment(ref _counter);
            return cashRegisterNo + n.ToString("000000");
        }
    }

    /// <summary>Runs a call on another thread and hands back its result or exception.</summary>
    internal sealed class Background<T>
    {
        private readonly Thread _thread;
        private T _result;
        private Exception _error;

        internal Background(Func<T> call)
        {
            _thread = new Thread(() =>
            {
                try { _result = call(); }
                catch (Exception e) { _error = e; }
            }) { IsBackground = true };
            _thread.Start();
        }

        /// <summary>Joins the thread (fails after <paramref name="seconds"/>), returns the exception it threw (null if none).</summary>
        internal Exception Join(double seconds)
        {
            if (!_thread.Join(TimeSpan.FromSeconds(seconds))) Assert.Fail("the call did not end within " + seconds + " s");
            return _error;
        }

        internal T Result { get { return _result; } }
    }
}
