// A console point-of-sale flow over the Nami C# binding: open the in-process middleware, connect and
// register the terminal, take a payment of SAR 10.00, show the outcome, settle at the end of the day.
// Ctrl+C while the terminal waits for the card cancels the payment.
//
// Build and run (Mono; see README.md for the .NET SDK):
//   cargo build --release -p nami-ffi
//   mcs -langversion:7.2 -target:library -out:Nami.dll ../../bindings/csharp/Nami/*.cs
//   mcs -langversion:7.2 -r:Nami.dll -out:Pos.exe Pos.cs
//   cp ../../target/release/libnami.so .          # nami.dll on Windows, next to Pos.exe
//   mono Pos.exe 192.168.1.100 2345 12345678
//
// Usage: Pos.exe <terminal-ip> <terminal-port> <cash-register-no> [state-dir]
using System;
using System.Globalization;
using Nami;

internal static class Pos
{
    private static int Main(string[] args)
    {
        if (args.Length < 3)
        {
            Console.Error.WriteLine("usage: Pos.exe <terminal-ip> <terminal-port> <cash-register-no> [state-dir]");
            return 2;
        }
        string ip = args[0];
        int port = int.Parse(args[1], CultureInfo.InvariantCulture);
        string cashRegister = args[2];
        Console.WriteLine("libnami " + NamiLibrary.Version);

        // 1. The middleware: the journal and the registrations live in the state directory, so a
        //    payment is never charged twice and unknown outcomes are recovered, even after a crash.
        var options = new NamiOptions { StateDir = args.Length > 3 ? args[3] : null };
        using (var nami = new Middleware(options))
        {
            // Events arrive on a library thread: keep the handler short (a GUI would BeginInvoke).
            nami.StateChanged += (sender, e) =>
            {
                if (e.Event == "waitingForCard") Console.WriteLine("  terminal: present card");
            };
            // Ctrl+C ends the card wait: the purchase below throws CancelledException.
            Console.CancelKeyPress += (sender, e) =>
            {
                e.Cancel = true;
                nami.Cancel();
            };

            try
            {
                // 2. Connect and REGISTER once per terminal (remembered across restarts).
                var terminal = nami.ConnectTcp(ip, port);
                var registration = nami.Register(terminal, cashRegister);
                Console.WriteLine("registered: terminal ID " + registration.TerminalId);

                // 3. A fresh ECR reference for the sale: never reuse one for a new sale.
                var reference = nami.NextEcrReference(cashRegister);

                // 4. PURCHASE of SAR 10.00. Blocks until the card is read and the host answers.
                var sale = nami.Purchase(terminal, "10.00", reference);
                Console.WriteLine("purchase " + reference + ": " + sale.ResponseCode + " " + sale.Message);
                if (sale.Approved)
                    Console.WriteLine("  approved: card " + sale.MaskedPan + ", RRN " + sale.Rrn + ", approval " + sale.ApprovalCode);
                else
                    Console.WriteLine("  declined: ask for another card");

                // 5. End of day: settle.
                var settlement = nami.Reconciliation(terminal, nami.NextEcrReference(cashRegister));
                Console.WriteLine("reconciliation: " + settlement.ResponseCode + " " + settlement.Message);
                return sale.Approved ? 0 : 1;
            }
            catch (NamiException e) when (e.IsOutcomeUnknown)
            {
                // The card may have been charged. Do NOT sell again with a new reference: retry with
                // the same one (the middleware answers from its journal once it knows) or check
                // /transactions/<reference>.
                Console.Error.WriteLine("outcome of " + e.EcrReference + " unknown (" + e.StatusCode + "): " + e.Message);
                return 3;
            }
            catch (InvalidInputException e)
            {
                Console.Error.WriteLine("bad input in " + e.Field + ": " + e.Message);
                return 2;
            }
            catch (NamiException e)
            {
                Console.Error.WriteLine(e.GetType().Name + " (" + e.StatusCode + "): " + e.Message);
                return 1;
            }
        }
    }
}
