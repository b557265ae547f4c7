// Terminal (typed calls over nami_terminal_*) against nami-sim over TCP.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using NUnit.Framework;

namespace Nami.Tests
{
    [TestFixture]
    public class TerminalTests
    {
        private const string Crn = "11111111";
        private Terminal _terminal;

        [SetUp]
        public void SetUp()
        {
            _terminal = Terminal.ConnectTcp("127.0.0.1", Sim.Port, new NamiOptions { CardPresentSeconds = 30 });
            Assert.IsTrue(_terminal.Register(Crn).Approved);
        }

        [TearDown]
        public void TearDown()
        {
            Sim.CardTap(false);
            _terminal.Dispose();
            Sim.AwaitIdle();
        }

        [Test]
        public void LibraryVersionAndAbi()
        {
            Assert.AreEqual(NamiLibrary.ExpectedAbiVersion, NamiLibrary.AbiVersion);
            StringAssert.IsMatch(@"^\d+\.\d+\.\d+", NamiLibrary.Version);
        }

        [Test]
        public void FullSequence()
        {
            var reg = _terminal.Register(Crn);
            Assert.AreEqual("REGISTER", reg.TxnType);
            Assert.AreEqual("800", reg.ResponseCode);
            Assert.AreEqual("8184000200000077", reg.TerminalId);

            var session = _terminal.StartSession(Crn);
            Assert.AreEqual("000", session.ResponseCode);
            Assert.AreEqual("START_SESSION", session.TxnType);

            var saleRef = Ecr.Next(Crn);
            var sale = _terminal.Purchase("10.00", saleRef);
            Assert.IsTrue(sale.Approved, sale.ToString());
            Assert.AreEqual("PURCHASE", sale.TxnType);
            Assert.AreEqual("000", sale.ResponseCode);
            Assert.AreEqual("APPROVED", sale.Message);
            Assert.AreEqual(saleRef, sale.EcrReference);
            Assert.AreEqual("588845******1234", sale.MaskedPan);
            Assert.AreEqual(12, sale.Rrn.Length);
            Assert.AreEqual(6, sale.ApprovalCode.Length);
            Assert.AreEqual(64, sale.Signature.Length);
            StringAssert.Contains("\"approved\":true", sale.RawJson);
            Assert.AreEqual(sale.Rrn, sale.GetField("rrn"));
            Assert.IsNull(sale.GetField("noSuchField"));

            var dup = _terminal.Duplicate(saleRef, Ecr.Next(Crn));
            Assert.IsTrue(dup.Approved, dup.ToString());
            Assert.AreEqual("DUPLICATE", dup.TxnType);
            Assert.AreEqual(sale.Rrn, dup.Rrn, "the duplicate repeats the sale");

            var refund = _terminal.Refund("4.00", sale.Rrn, Ecr.Next(Crn), approvalCode: sale.ApprovalCode);
            Assert.IsTrue(refund.Approved, refund.ToString());
            Assert.AreEqual("REFUND", refund.TxnType);

            var second = _terminal.Purchase(2.00m, Ecr.Next(Crn), print: false);
            Assert.IsTrue(second.Approved, second.ToString());
            Assert.AreEqual("520473******4321", second.MaskedPan, "SAR 2.00 pays with MASTERCARD");

            var reversal = _terminal.Reversal(Ecr.Next(Crn));
            Assert.AreEqual("400", reversal.ResponseCode, reversal.ToString());
            Assert.AreEqual(second.Rrn, reversal.Rrn, "the reversal names the last transaction");

            var status = _terminal.CheckStatus(Ecr.Next(Crn));
            Assert.AreEqual("000", status.ResponseCode, status.ToString());

            var recon = _terminal.Reconciliation(Ecr.Next(Crn));
            Assert.AreEqual("500", recon.ResponseCode, recon.ToString());
            Assert.AreEqual("RECONCILIATION", recon.TxnType);
            Assert.AreEqual("3", recon.GetField("schemeCount"), recon.RawJson);
            // UTF-8 out: the merchant's Arabic name, decoded by the library, arrives intact.
            Assert.AreEqual("متجر نامي", recon.GetField("merchantNameAr"));

            var end = _terminal.EndSession(Crn);
            Assert.AreEqual("000", end.ResponseCode);

            var preAuth = _terminal.Transact(
                "{\"txnType\":\"PRE_AUTHORIZATION\",\"amount\":\"25.00\",\"ecrReferenceNo\":\"" + Ecr.Next(Crn) + "\"}");
            Assert.IsTrue(preAuth.Approved, preAuth.ToString());
            Assert.AreEqual("PRE_AUTHORIZATION", preAuth.TxnType);
        }

        [Test]
        public void DeclinedPurchaseIsAResultNotAnException()
        {
            var result = _terminal.Purchase("1.51", Ecr.Next(Crn));
            Assert.IsFalse(result.Approved);
            Assert.AreEqual("116", result.ResponseCode);
            Assert.AreEqual("DECLINED", result.Message);
            StringAssert.Contains("\"approved\":false", result.RawJson);
        }

        [Test]
        public void CancelFromAnotherThreadEndsACardWaitPromptly()
        {
            Sim.CardTap(true);
            var reference = Ecr.Next(Crn);
            var purchase = new Background<TxnResult>(() => _terminal.Purchase("10.00", reference));
            Sim.AwaitCardWait();
            var clock = Stopwatch.StartNew();
            _terminal.Cancel();
            var error = purchase.Join(10);
            clock.Stop();
            Assert.IsInstanceOf<CancelledException>(error, "" + error);
            var cancelled = (CancelledException)error;
            Assert.AreEqual(NamiStatus.Cancelled, cancelled.StatusCode);
            Assert.AreEqual(reference, cancelled.EcrReference, "the payment's outcome is unknown: its reference");
            Assert.IsTrue(cancelled.IsOutcomeUnknown);
            Assert.Less(clock.ElapsedMilliseconds, 1000, "cancel took " + clock.ElapsedMilliseconds + " ms");

            // Recovery: DUPLICATE asks the terminal what became of it (a reply either way).
            Sim.CardTap(false);
            Sim.AwaitIdle();
            var dup = _terminal.Duplicate(reference, Ecr.Next(Crn));
            Assert.AreEqual("DUPLICATE", dup.TxnType);
            Assert.IsNotNull(dup.ResponseCode);
        }

        [Test]
        public void ASecondCallDuringACardWaitIsBusy()
        {
            Sim.CardTap(true);
            var first = new Background<TxnResult>(() => _terminal.Purchase("10.00", Ecr.Next(Crn)));
            Sim.AwaitCardWait();
            var busy = Assert.Throws<TerminalBusyException>(() => _terminal.Purchase("3.00", Ecr.Next(Crn)));
            Assert.AreEqual(NamiStatus.Busy, busy.StatusCode);
            StringAssert.Contains("TERMINAL_BUSY", busy.Message);
            Assert.IsFalse(busy.IsOutcomeUnknown, "nothing was sent");
            _terminal.Cancel();
            Assert.IsInstanceOf<CancelledException>(first.Join(10));
        }

        [Test]
        public void ACardTapCompletesTheWait()
        {
            Sim.CardTap(true);
            var events = new List<string>();
            _terminal.StateChanged += (s, e) => { lock (events) events.Add(e.Event); };
            var purchase = new Background<TxnResult>(() => _terminal.Purchase("10.00", Ecr.Next(Crn)));
            Sim.AwaitCardWait();
            StringAssert.Contains("\"purchaseWasWaiting\":true", Sim.Post("/tap", "").Replace(" ", ""));
            Assert.IsNull(purchase.Join(10));
            Assert.IsTrue(purchase.Result.Approved);
            lock (events) CollectionAssert.Contains(events, "waitingForCard");
        }

        [Test]
        public void BadInputNamesTheField()
        {
            var amount = Assert.Throws<InvalidAmountException>(() => _terminal.Purchase("1.234", Ecr.Next(Crn)));
            Assert.AreEqual("amount", amount.Field);
            Assert.AreEqual(NamiStatus.InvalidAmount, amount.StatusCode);
            StringAssert.Contains("more than two decimals", amount.Message);
            Assert.IsInstanceOf<InvalidInputException>(amount);

            Assert.AreEqual("amount", Assert.Catch<InvalidInputException>(() => _terminal.Purchase(1.005m, Ecr.Next(Crn))).Field);
            Assert.AreEqual("amount", Assert.Catch<InvalidInputException>(() => _terminal.Purchase("0.00", Ecr.Next(Crn))).Field);

            var ecr = Assert.Throws<InvalidEcrReferenceException>(() => _terminal.Purchase("10.00", "123"));
            Assert.AreEqual("ecrReferenceNo", ecr.Field);
            Assert.AreEqual(NamiStatus.InvalidEcrRef, ecr.StatusCode);

            var crn = Assert.Catch<InvalidInputException>(() => _terminal.Register("abc"));
            Assert.AreEqual("cashRegisterNo", crn.Field);

            var json = Assert.Catch<InvalidInputException>(() => _terminal.Transact("{not json"));
            Assert.AreEqual(NamiStatus.InvalidArgument, json.StatusCode);
            var type = Assert.Catch<InvalidInputException>(() => _terminal.Transact("{\"txnType\":\"NO_SUCH_TYPE\"}"));
            Assert.AreEqual("txnType", type.Field, type.Message);

            // UTF-8 both ways: the value comes back in the message unchanged.
            var arabic = Assert.Catch<InvalidInputException>(() => _terminal.Purchase("١٠.٠٠", Ecr.Next(Crn)));
            StringAssert.Contains("١٠.٠٠", arabic.Message);
        }

        [Test]
        public void ABrokenLinkLeavesTheOutcomeUnknownWithItsReference()
        {
            Sim.Post("/fault", "{\"fault\":\"close-after-request\",\"scope\":\"next\",\"count\":1}");
            var reference = Ecr.Next(Crn);
            var e = Assert.Throws<OutcomeUnknownException>(() => _terminal.Purchase("10.00", reference));
            Assert.AreEqual(NamiStatus.OutcomeUnknown, e.StatusCode);
            Assert.AreEqual(reference, e.EcrReference, e.Message);
            Assert.IsTrue(e.IsOutcomeUnknown);
            // The terminal did carry it out: DUPLICATE tells.
            var dup = _terminal.Duplicate(reference, Ecr.Next(Crn));
            Assert.IsTrue(dup.Approved, dup.ToString());
        }

        [Test]
        public void NoReplyWithinTheDeadlineIsATimeout()
        {
            using (var t = Terminal.ConnectTcp("127.0.0.1", Sim.Port, new NamiOptions { CardPresentSeconds = 1 }))
            {
                t.Register(Crn);
                Sim.Post("/fault", "{\"fault\":\"never-answer\",\"scope\":\"next\",\"count\":1}");
                var reference = Ecr.Next(Crn);
                var e = Assert.Throws<NamiTimeoutException>(() => t.Purchase("10.00", reference));
                Assert.AreEqual(NamiStatus.Timeout, e.StatusCode);
                Assert.AreEqual(reference, e.EcrReference, e.Message);
            }
        }

        [Test]
        public void NullArgumentsNeverReachNativeCode()
        {
            Assert.AreEqual("amount", Assert.Throws<ArgumentNullException>(() => _terminal.Purchase(null, Ecr.Next(Crn))).ParamName);
            Assert.AreEqual("ecrReference", Assert.Throws<ArgumentNullException>(() => _terminal.Purchase("1.00", null)).ParamName);
            Assert.Throws<ArgumentNullException>(() => _terminal.Register(null));
            Assert.Throws<ArgumentNullException>(() => _terminal.Refund("1.00", null, Ecr.Next(Crn)));
            Assert.Throws<ArgumentNullException>(() => _terminal.Duplicate(null, Ecr.Next(Crn)));
            Assert.Throws<ArgumentNullException>(() => _terminal.Transact(null));
            Assert.Throws<ArgumentNullException>(() => Terminal.ConnectTcp(null, 1));
            Assert.Throws<ArgumentNullException>(() => Terminal.ConnectSerial(null));
            Assert.Throws<ArgumentOutOfRangeException>(() => Terminal.ConnectTcp("127.0.0.1", 0));
            Assert.Throws<ArgumentOutOfRangeException>(() => Terminal.ConnectTcp("127.0.0.1", 70000));
        }

        [Test]
        public void BadOptionsAndSettingsAreRefused()
        {
            var option = Assert.Catch<InvalidInputException>(
                () => Terminal.ConnectTcp("127.0.0.1", Sim.Port, new NamiOptions { StateDir = "/tmp" }));
            StringAssert.Contains("stateDir", option.Message);
            Assert.Catch<InvalidInputException>(() => Terminal.ConnectTcp("  ", Sim.Port));
            Assert.Catch<InvalidInputException>(() => Terminal.ConnectSerial("/dev/null", baudRate: 12345));
            Assert.Catch<InvalidInputException>(() => Terminal.ConnectSerial("/dev/null", dataBits: 9));
        }

        [Test]
        public void UnreachableTerminal()
        {
            using (var t = Terminal.ConnectTcp("127.0.0.1", Sim.ClosedPort()))
            {
                var e = Assert.Throws<UnableToConnectException>(() => t.Connect());
                Assert.AreEqual(NamiStatus.UnableToConnect, e.StatusCode);
                Assert.Throws<UnableToConnectException>(() => t.Register(Crn));
            }
        }

        [Test]
        public void RegisterRequiredAfterTheTerminalRebooted()
        {
            Sim.Post("/reboot", "");
            var e = Assert.Throws<RegisterRequiredException>(() => _terminal.Purchase("10.00", Ecr.Next(Crn)));
            Assert.AreEqual(NamiStatus.RegisterRequired, e.StatusCode);
            Assert.IsTrue(_terminal.Register(Crn).Approved);
            Assert.IsTrue(_terminal.Purchase("10.00", Ecr.Next(Crn)).Approved);
        }

        [Test]
        public void EventsAreRaisedAndAThrowingHandlerIsHarmless()
        {
            var events = new List<TerminalEventArgs>();
            _terminal.StateChanged += (s, e) => { throw new InvalidOperationException("a handler that throws"); };
            _terminal.StateChanged += (s, e) =>
            {
                Assert.AreSame(_terminal, s);
                lock (events) events.Add(e);
            };
            var result = _terminal.Purchase("10.00", Ecr.Next(Crn));
            Assert.IsTrue(result.Approved);
            List<string> names;
            lock (events) names = events.Select(e => e.Event).ToList();
            CollectionAssert.Contains(names, "requestSent");
            CollectionAssert.Contains(names, "responseReceived");
            TerminalEventArgs response;
            lock (events) response = events.First(e => e.Event == "responseReceived");
            Assert.AreEqual("127.0.0.1:" + Sim.Port, response.Terminal);
            Assert.AreEqual("000", response.GetField("responseCode"));
            Assert.AreEqual("true", response.GetField("approved"));
            StringAssert.StartsWith("{", response.Json);
        }

        [Test]
        public void CancelFromAnEventHandler()
        {
            Sim.CardTap(true);
            _terminal.StateChanged += (s, e) =>
            {
                if (e.Event == "waitingForCard") ((Terminal)s).Cancel();
            };
            Assert.Throws<CancelledException>(() => _terminal.Purchase("10.00", Ecr.Next(Crn)));
        }

        [Test]
        public void DisposeTwiceIsSafeAndUseAfterDisposeThrows()
        {
            var t = Terminal.ConnectTcp("127.0.0.1", Sim.Port);
            Assert.IsTrue(t.Register(Crn).Approved);
            t.Dispose();
            t.Dispose();
            Assert.Throws<ObjectDisposedException>(() => t.Purchase("1.00", Ecr.Next(Crn)));
            Assert.Throws<ObjectDisposedException>(() => t.Cancel());
            Assert.Throws<ObjectDisposedException>(() => t.Connect());
            Assert.Throws<ObjectDisposedException>(() => t.Transact("{}"));
        }

        [Test]
        public void DisposeDuringACardWaitEndsTheCall()
        {
            Sim.CardTap(true);
            var t = Terminal.ConnectTcp("127.0.0.1", Sim.Port);
            t.Register(Crn);
            var purchase = new Background<TxnResult>(() => t.Purchase("10.00", Ecr.Next(Crn)));
            Sim.AwaitCardWait();
            t.Dispose();
            Assert.IsInstanceOf<CancelledException>(purchase.Join(10));
            Assert.Throws<ObjectDisposedException>(() => t.Cancel());
        }

        [Test]
        public void ManyTerminalsCreatedAndCollectedWithoutDispose()
        {
            // Finalizers free the handles and the delegates stay alive as long as the handles.
            for (int i = 0; i < 20; i++)
            {
                var t = Terminal.ConnectTcp("127.0.0.1", Sim.Port);
                t.StateChanged += (s, e) => { };
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            Assert.IsTrue(_terminal.Purchase("10.00", Ecr.Next(Crn)).Approved);
        }
    }
}
