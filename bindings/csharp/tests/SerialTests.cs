// The serial (COM) path: the simulator's pseudo-terminal opened as a serial port.
using System;
using System.IO;
using NUnit.Framework;

namespace Nami.Tests
{
    [TestFixture]
    public class SerialTests
    {
        private const string Crn = "44444444";

        [TearDown]
        public void TearDown()
        {
            Sim.CardTap(false);
            Sim.AwaitIdle();
        }

        [Test]
        public void TerminalOverASerialPort()
        {
            using (var t = Terminal.ConnectSerial(Sim.Pty, 115200, Parity.None, 8, 1))
            {
                t.Connect();
                Assert.AreEqual("800", t.Register(Crn).ResponseCode);
                var sale = t.Purchase("1.00", Ecr.Next(Crn));
                Assert.IsTrue(sale.Approved, sale.ToString());
                Assert.AreEqual("476173******0119", sale.MaskedPan, "SAR 1.00 pays with VISA");
                t.Disconnect();
                Assert.IsTrue(t.Purchase("10.00", Ecr.Next(Crn)).Approved, "the next call re-opens the link");
            }
        }

        [Test]
        public void MiddlewareOverTheComConnection()
        {
            var dir = Path.Combine(Path.GetTempPath(), "nami-cs-com-" + Guid.NewGuid().ToString("N"));
            try
            {
                using (var m = new Middleware(new NamiOptions { StateDir = dir, RestoreConnections = false }))
                {
                    var com = m.ConnectSerial(Sim.Pty);
                    Assert.IsTrue(com.IsCom);
                    Assert.AreEqual("COM", com.ToString());
                    Assert.IsTrue(m.Register(com, Crn).Approved);
                    var sale = m.Purchase(com, "10.00", m.NextEcrReference(Crn));
                    Assert.IsTrue(sale.Approved, sale.ResponseJson);
                    m.Disconnect(com);
                }
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, true);
            }
        }
    }
}
