// Middleware (nami_call: the REST API in process, with its journal) against nami-sim over TCP.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using NUnit.Framework;

namespace Nami.Tests
{
    [TestFixture]
    public class MiddlewareTests
    {
        private const string Crn = "22222222";
        private string _stateDir;
        private Middleware _middleware;
        private TerminalTarget _sim;

        [SetUp]
        public void SetUp()
        {
            // A non-ASCII state directory: paths go to the library as UTF-8.
            _stateDir = Path.Combine(Path.GetTempPath(), "nami-cs-ü-" + Guid.NewGuid().ToString("N"));
            _middleware = new Middleware(new NamiOptions
            {
                StateDir = _stateDir,
                CardPresentSeconds = 30,
                RestoreConnections = false,
            });
            _sim = _middleware.ConnectTcp("127.0.0.1", Sim.Port);
            Assert.IsTrue(_middleware.Register(_sim, Crn).Approved);
        }

        [TearDown]
        public void TearDown()
        {
            Sim.CardTap(false);
            _middleware.Dispose();
            Sim.AwaitIdle();
            try { Directory.Delete(_stateDir, true); } catch (IOException) { }
        }

        private string TcpBody(string paymentRequest)
        {
            return "{\"tcpipcomData\":{\"ip\":\"127.0.0.1\",\"port\":" + Sim.Port + "},\"paymentRequest\":" + paymentRequest + "}";
        }

        [Test]
        public void StateDirectoryIsCreatedUnderItsUtf8Name()
        {
            Assert.IsTrue(File.Exists(Path.Combine(_stateDir, "journal.sqlite")), _stateDir);
        }

        [Test]
        public void FullSequenceWithTypedOperations()
        {
            Assert.AreEqual("000", _middleware.StartSession(_sim, Crn).ResponseCode);

            var saleRef = _middleware.NextEcrReference(Crn);
            StringAssert.StartsWith(Crn, saleRef);
            Assert.AreEqual(14, saleRef.Length);
            var sale = _middleware.Purchase(_sim, "10.00", saleRef);
            Assert.IsTrue(sale.Approved, sale.ResponseJson);
            Assert.AreEqual("PURCHASE", sale.TxnType);
            Assert.AreEqual("000", sale.ResponseCode);
            Assert.AreEqual(saleRef, sale.EcrReference);
            Assert.AreEqual("588845******1234", sale.MaskedPan);
            Assert.AreEqual(12, sale.Rrn.Length, sale.RawJson);
            Assert.IsFalse(sale.Replay);
            StringAssert.Contains("\"statusCode\":\"200\"", sale.ResponseJson);

            // The same reference again: the journal answers, nothing is charged twice.
            var again = _middleware.Purchase(_sim, "10.00", saleRef);
            Assert.IsTrue(again.Replay, again.ResponseJson);
            Assert.AreEqual(sale.Rrn, again.Rrn);

            var dup = _middleware.Duplicate(_sim, saleRef, _middleware.NextEcrReference(Crn));
            Assert.IsTrue(dup.Approved, dup.ResponseJson);
            Assert.AreEqual(sale.Rrn, dup.Rrn);

            var refund = _middleware.Refund(_sim, "5.00", sale.Rrn, _middleware.NextEcrReference(Crn));
            Assert.IsTrue(refund.Approved, refund.ResponseJson);

            Assert.IsTrue(_middleware.Purchase(_sim, "1.00", _middleware.NextEcrReference(Crn), print: false).Approved);
            var reversal = _middleware.Reversal(_sim, _middleware.NextEcrReference(Crn));
            Assert.AreEqual("400", reversal.ResponseCode, reversal.ResponseJson);

            Assert.AreEqual("000", _middleware.CheckStatus(_sim, _middleware.NextEcrReference(Crn)).ResponseCode);
            var recon = _middleware.Reconciliation(_sim, _middleware.NextEcrReference(Crn));
            Assert.AreEqual("500", recon.ResponseCode, recon.ResponseJson);
            Assert.AreEqual("000", _middleware.EndSession(_sim, Crn).ResponseCode);

            var preAuth = _middleware.Transact(_sim,
                "{\"txnType\":\"PRE_AUTHORIZATION\",\"amount\":\"25.00\",\"ecrReferenceNo\":\"" + _middleware.NextEcrReference(Crn) + "\"}");
            Assert.IsTrue(preAuth.Approved, preAuth.ResponseJson);
            Assert.AreEqual("PRE_AUTHORIZATION", preAuth.TxnType);
            Assert.IsNotNull(preAuth.GetField("cardNumber"), preAuth.RawJson);

            // The same reference for another amount is another sale (Nami's reference allows a
            // static reference): sent and charged, not refused.
            var other = _middleware.Purchase(_sim, "11.00", saleRef);
            Assert.IsTrue(other.Approved && !other.Replay, other.ResponseJson);

            var journal = _middleware.Call("/transactions/" + saleRef, null);
            StringAssert.Contains("\"count\":2", journal);
            _middleware.Disconnect(_sim);
        }

        [Test]
        public void FullSequenceWithRestJson()
        {
            var register = _middleware.Call("/performTransactionTCPIP",
                TcpBody("{\"txnType\":\"REGISTER\",\"cashRegisterNo\":\"" + Crn + "\"}"));
            StringAssert.Contains("\"statusCode\":\"200\"", register);
            StringAssert.Contains("\"responseCode\":\"800\"", register);

            var saleRef = Ecr.Next(Crn);
            var sale = _middleware.Call("/performTransactionTCPIP", TcpBody(
                "{\"txnType\":\"PURCHASE\",\"amount\":\"10.00\",\"ecrReferenceNo\":\"" + saleRef + "\",\"jsonResponse\":true}"));
            StringAssert.Contains("\"approved\":true", sale);
            StringAssert.Contains("\"cardNumber\":\"588845******1234\"", sale);

            var declined = _middleware.Call("/performTransactionTCPIP", TcpBody(
                "{\"txnType\":\"PURCHASE\",\"amount\":\"3.51\",\"ecrReferenceNo\":\"" + Ecr.Next(Crn) + "\"}"));
            StringAssert.Contains("\"approved\":false", declined);
            StringAssert.Contains("\"responseCode\":\"116\"", declined);

            // A middleware error reported in the body is returned (as HTTP 200 would), not thrown.
            var badAmount = _middleware.Call("/performTransactionTCPIP", TcpBody(
                "{\"txnType\":\"PURCHASE\",\"amount\":\"1.234\",\"ecrReferenceNo\":\"" + Ecr.Next(Crn) + "\"}"));
            StringAssert.Contains("INVALID_AMOUNT", badAmount);

            var reversal = _middleware.Call("/performTransactionTCPIP", TcpBody(
                "{\"txnType\":\"REVERSAL\",\"ecrReferenceNo\":\"" + Ecr.Next(Crn) + "\"}"));
            StringAssert.Contains("\"statusCode\":\"200\"", reversal);
            var recon = _middleware.Call("/performTransactionTCPIP", TcpBody(
                "{\"txnType\":\"RECONCILIATION\",\"ecrReferenceNo\":\"" + Ecr.Next(Crn) + "\"}"));
            StringAssert.Contains("\"responseCode\":\"500\"", recon);

            var status = _middleware.Call("/registrationStatus?ip=127.0.0.1&port=" + Sim.Port, null);
            StringAssert.Contains("8184000200000077", status);
            StringAssert.Contains("\"count\":", _middleware.Call("/transactions", "{}"));
            StringAssert.StartsWith("[", _middleware.Call("/get-com-ports", null));
        }

        [Test]
        public void DeclinedPurchase()
        {
            var result = _middleware.Purchase(_sim, "7.51", _middleware.NextEcrReference(Crn));
            Assert.IsFalse(result.Approved);
            Assert.AreEqual("116", result.ResponseCode);
        }

        [Test]
        public void CallErrorsAreTypedAndCarryTheBody()
        {
            var missing = Assert.Throws<NotFoundException>(() => _middleware.Call("/no-such-endpoint", null));
            Assert.AreEqual(NamiStatus.NotFound, missing.StatusCode);
            Assert.IsNotNull(missing.ResponseJson);

            var shape = Assert.Catch<InvalidInputException>(
                () => _middleware.Call("/performTransactionTCPIP", "{\"tcpipcomData\":5}"));
            Assert.AreEqual("tcpipcomData", shape.Field, shape.Message);
            StringAssert.StartsWith("{", shape.ResponseJson);

            Assert.Catch<InvalidInputException>(() => _middleware.Call("/performTransactionTCPIP", "{not json"));
            Assert.Throws<NotFoundException>(() => _middleware.Call("/transactions/99999999999999", null));
            Assert.Throws<ArgumentNullException>(() => _middleware.Call(null, "{}"));
        }

        [Test]
        public void BadInputNamesTheField()
        {
            var amount = Assert.Throws<InvalidAmountException>(
                () => _middleware.Purchase(_sim, "1.234", _middleware.NextEcrReference(Crn)));
            Assert.AreEqual("amount", amount.Field, amount.Message);
            StringAssert.Contains("INVALID_AMOUNT", amount.ResponseJson);

            var ecr = Assert.Throws<InvalidEcrReferenceException>(() => _middleware.Purchase(_sim, "1.00", "12"));
            Assert.AreEqual("ecrReferenceNo", ecr.Field, ecr.Message);

            Assert.Throws<ArgumentNullException>(() => _middleware.Purchase(null, "1.00", Ecr.Next(Crn)));
            Assert.Throws<ArgumentNullException>(() => _middleware.Purchase(_sim, null, Ecr.Next(Crn)));
            Assert.Throws<ArgumentNullException>(() => _middleware.NextEcrReference(null));
            Assert.Throws<ArgumentOutOfRangeException>(() => TerminalTarget.Tcp("127.0.0.1", 0));

            var option = Assert.Catch<InvalidInputException>(() => new Middleware("{\"bogus\":1}"));
            StringAssert.Contains("bogus", option.Message);
        }

        [Test]
        public void ABrokenLinkLeavesTheOutcomeUnknownWithItsReference()
        {
            Sim.Post("/fault", "{\"fault\":\"close-after-request\",\"scope\":\"next\",\"count\":1}");
            var reference = _middleware.NextEcrReference(Crn);
            var e = Assert.Throws<OutcomeUnknownException>(() => _middleware.Purchase(_sim, "10.00", reference));
            Assert.AreEqual(reference, e.EcrReference, e.ResponseJson);
            StringAssert.Contains("\"outcomeUnknown\":true", e.ResponseJson);
            // The journal knows: the same reference is not sent again.
            StringAssert.Contains("\"state\":", _middleware.Call("/transactions/" + reference, null));
        }

        [Test]
        public void UnreachableTerminal()
        {
            var e = Assert.Throws<UnableToConnectException>(() => _middleware.ConnectTcp("127.0.0.1", Sim.ClosedPort()));
            Assert.AreEqual(NamiStatus.UnableToConnect, e.StatusCode);
            Assert.Throws<UnableToConnectException>(() => _middleware.ConnectSerial("/dev/nami-no-such-port"));
        }

        [Test]
        public void CancelFromAnotherThreadEndsACardWaitPromptly()
        {
            Sim.CardTap(true);
            var reference = _middleware.NextEcrReference(Crn);
            var purchase = new Background<TxnResult>(() => _middleware.Purchase(_sim, "10.00", reference));
            Sim.AwaitCardWait();
            var clock = Stopwatch.StartNew();
            _middleware.Cancel();
            var error = purchase.Join(10);
            clock.Stop();
            Assert.IsInstanceOf<CancelledException>(error, "" + error);
            var cancelled = (CancelledException)error;
            Assert.AreEqual(reference, cancelled.EcrReference, cancelled.ResponseJson);
            StringAssert.Contains("CANCELLED", cancelled.ResponseJson);
            Assert.Less(clock.ElapsedMilliseconds, 1000, "cancel took " + clock.ElapsedMilliseconds + " ms");
        }

        [Test]
        public void CancelOneTerminal()
        {
            Sim.CardTap(true);
            var purchase = new Background<TxnResult>(() => _middleware.Purchase(_sim, "10.00", _middleware.NextEcrReference(Crn)));
            Sim.AwaitCardWait();
            _middleware.Cancel(_sim);
            Assert.IsInstanceOf<CancelledException>(purchase.Join(10));
        }

        [Test]
        public void ASecondCallDuringACardWaitIsBusy()
        {
            Sim.CardTap(true);
            var first = new Background<TxnResult>(() => _middleware.Purchase(_sim, "10.00", _middleware.NextEcrReference(Crn)));
            Sim.AwaitCardWait();
            var busy = Assert.Throws<TerminalBusyException>(
                () => _middleware.Purchase(_sim, "3.00", _middleware.NextEcrReference(Crn)));
            StringAssert.Contains("TERMINAL_BUSY", busy.ResponseJson);
            _middleware.Cancel();
            Assert.IsInstanceOf<CancelledException>(first.Join(10));
        }

        [Test]
        public void EventsAreRaised()
        {
            var events = new List<TerminalEventArgs>();
            _middleware.StateChanged += (s, e) => { lock (events) events.Add(e); };
            Assert.IsTrue(_middleware.Purchase(_sim, "10.00", _middleware.NextEcrReference(Crn)).Approved);
            TerminalEventArgs response;
            lock (events) response = events.FirstOrDefault(e => e.Event == "responseReceived");
            Assert.IsNotNull(response, "no responseReceived among " + string.Join(", ", events.Select(e => e.Json)));
            Assert.AreEqual("127.0.0.1:" + Sim.Port, response.Terminal);
        }

        [Test]
        public void DisposeTwiceIsSafeAndUseAfterDisposeThrows()
        {
            var dir = Path.Combine(Path.GetTempPath(), "nami-cs-" + Guid.NewGuid().ToString("N"));
            var m = new Middleware("{\"stateDir\":\"" + dir.Replace("\\", "\\\\") + "\"}");
            StringAssert.StartsWith("[", m.Call("/get-com-ports", null));
            m.Dispose();
            m.Dispose();
            Assert.Throws<ObjectDisposedException>(() => m.Call("/get-com-ports", null));
            Assert.Throws<ObjectDisposedException>(() => m.Cancel());
            Assert.Throws<ObjectDisposedException>(() => m.Purchase(_sim, "1.00", Ecr.Next(Crn)));
            // The state directory is free again for a new middleware.
            using (var again = new Middleware(new NamiOptions { StateDir = dir }))
                StringAssert.StartsWith("[", again.Call("/get-com-ports", null));
            Directory.Delete(dir, true);
        }
    }
}
