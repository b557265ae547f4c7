// `sa.nami.Terminal` against `nami-sim`: the whole sequence, declines, cancel from another thread,
// busy, every typed error, the event listener and the log hook.
package sa.nami.tests

import java.time.Duration
import java.util.Collections
import kotlin.test.assertContains
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.After
import org.junit.Before
import org.junit.Test
import sa.nami.EventListener
import sa.nami.LogLevel
import sa.nami.LogSink
import sa.nami.NamiException
import sa.nami.Original
import sa.nami.Parity
import sa.nami.PaymentRequest
import sa.nami.Registration
import sa.nami.SerialSettings
import sa.nami.StatusCode
import sa.nami.Terminal
import sa.nami.TerminalConfig
import sa.nami.listSerialPorts
import sa.nami.setLogSink
import sa.nami.statusCodeOf
import sa.nami.statusCodeWire
import sa.nami.statusCodes

class Events : EventListener {
    val seen: MutableList<Pair<String, String>> = Collections.synchronizedList(mutableListOf())

    override fun onEvent(terminal: String, eventJson: String) {
        seen += terminal to eventJson
    }

    fun names(): List<String> = synchronized(seen) { seen.map { it.second.jsonValue("event")!! } }
}

class Lines : LogSink {
    val lines: MutableList<Triple<LogLevel, String, String>> = Collections.synchronizedList(mutableListOf())

    override fun log(level: LogLevel, target: String, message: String) {
        lines += Triple(level, target, message)
    }
}

class TerminalTest {
    private lateinit var sim: Sim
    private lateinit var terminal: Terminal

    @Before fun start() {
        sim = Sim()
        terminal = Terminal.tcp(sim.host, sim.port.toUShort(), quickConfig())
    }

    @After fun stop() {
        terminal.close()
        sim.stop()
    }

    private fun registered(): Terminal = terminal.also { it.register(CASH_REGISTER) }

    @Test fun theWholeSequenceRunsRegisterToEndOfDay() {
        val registered = terminal.register(CASH_REGISTER)
        assertTrue(registered.approved)
        assertEquals("REGISTER", registered.txnType)
        assertEquals(TERMINAL_ID, registered.terminalId)
        assertEquals(Registration(TERMINAL_ID, CASH_REGISTER), terminal.registration())

        assertTrue(terminal.startSession().approved)

        val saleRef = nextRef()
        val sale = terminal.purchase("10.00", saleRef)
        assertTrue(sale.approved)
        assertEquals("000", sale.responseCode)
        assertEquals("PURCHASE", sale.txnType)
        assertEquals("10.00", sale.amount)
        assertEquals(saleRef, sale.ecrReference)
        assertEquals(64, sale.signature!!.length)
        assertEquals("588845******1234", sale.maskedPan)
        assertNotNull(sale.approvalCode)
        assertEquals(sale.rrn, sale.parsed["rrn"])
        assertEquals("000", sale.fields[2])
        assertTrue(sale.rawHex.isNotEmpty())
        assertEquals(saleRef, terminal.lastEcrReference())

        val copy = terminal.duplicate(saleRef, nextRef())
        assertTrue(copy.approved)
        assertEquals("DUPLICATE", copy.txnType)
        assertEquals(sale.rrn, copy.rrn)

        val reversal = terminal.reversal(nextRef())
        assertTrue(reversal.approved)
        assertEquals(sale.rrn, reversal.rrn)

        val settlement = terminal.reconciliation(nextRef(), print = false)
        assertTrue(settlement.approved)
        assertEquals("RECONCILIATION", settlement.txnType)

        assertTrue(terminal.checkStatus(nextRef()).approved)
        assertTrue(terminal.endSession().approved)
    }

    @Test fun aRefundNamesItsOriginalSale() {
        val sale = registered().purchase("20.00", nextRef())
        val refund = terminal.refund("5.00", Original(rrn = sale.rrn!!), nextRef())
        assertTrue(refund.approved)
        assertEquals("REFUND", refund.txnType)
    }

    @Test fun anAmountEndingIn51IsDeclinedWith116() {
        val result = registered().purchase("10.51", nextRef())
        assertFalse(result.approved)
        assertEquals("116", result.responseCode)
    }

    @Test fun transactSendsAnyTypeDescribedAsAPaymentRequest() {
        registered()
        val ref = nextRef()
        val result = terminal.transact(PaymentRequest(txnType = "PURCHASE", amount = "3.00", ecrReferenceNo = ref))
        assertTrue(result.approved)
        assertEquals(ref, result.ecrReference)
        val bad = assertFailsWith<NamiException.InvalidInput> {
            terminal.transact(
                PaymentRequest(txnType = "REFUND", refundAmount = "1.001", rrnNumber = "000000000001", ecrReferenceNo = nextRef()),
            )
        }
        assertEquals("refundAmount", bad.field)
    }

    @Test fun cancelFromAnotherThreadEndsACardWaitPromptly() {
        registered()
        sim.cardTap(true)
        val ref = nextRef()
        val call = InThread { terminal.purchase("10.00", ref) }
        sim.waitForCard()
        assertTrue(terminal.isBusy())
        val cancelledAt = System.nanoTime()
        assertTrue(terminal.cancel())
        call.join()
        val error = assertIs<NamiException.Cancelled>(call.error)
        assertEquals(ref, error.ecrReference)
        assertTrue((call.endedAt - cancelledAt) / 1_000_000 < 2_000, "cancel took too long")
        assertFalse(terminal.isBusy())
    }

    @Test fun aSecondCallDuringACardWaitIsBusy() {
        registered()
        sim.cardTap(true)
        val first = InThread { terminal.purchase("10.00", nextRef()) }
        sim.waitForCard()
        val busy = assertFailsWith<NamiException.Busy> { terminal.purchase("11.00", nextRef()) }
        assertEquals(sim.key, busy.terminal)
        sim.tap()
        first.join()
        assertNull(first.error)
        assertTrue(first.result!!.approved)
    }

    @Test fun anInvalidAmountNamesTheAmountFieldAndSendsNothing() {
        registered()
        val before = sim.state().jsonValue("requestsReceived")
        for (amount in listOf("10.001", "ten", "-1", "")) {
            val error = assertFailsWith<NamiException.InvalidInput> { terminal.purchase(amount, nextRef()) }
            assertEquals("amount", error.field)
            assertEquals("INVALID_AMOUNT", error.code)
            assertEquals(StatusCode.INVALID_AMOUNT, statusCodeOf(error.code))
        }
        assertEquals(before, sim.state().jsonValue("requestsReceived"))
    }

    // StatusCode is generated from nami-sdk's StatusCode (nami-ffi's uniffi_api/status.rs does not
    // compile without every code): the enum this jar holds is the library's list, in its order,
    // each code with its own wire spelling that parses back.
    @Test fun theStatusCodesAreTheLibrarysWholeList() {
        val members = StatusCode.entries.toList()
        assertEquals(members, statusCodes())
        val spellings = members.map { statusCodeWire(it) }
        assertEquals(spellings.size, spellings.toSet().size)
        assertTrue(spellings.size > 40)
        for ((code, wire) in members.zip(spellings)) assertEquals(code, statusCodeOf(wire))
        assertEquals("TERMINAL_BUSY", statusCodeWire(StatusCode.TERMINAL_BUSY))
        assertEquals("CableDisconnected", statusCodeWire(StatusCode.CABLE_DISCONNECTED))
        assertNull(statusCodeOf("terminal_busy"), "case matters on the wire")
    }

    @Test fun anInvalidEcrReferenceNamesItsField() {
        registered()
        for (ref in listOf("123", "1234567800000A", "123456780000011")) {
            val error = assertFailsWith<NamiException.InvalidInput> { terminal.purchase("10.00", ref) }
            assertEquals("ecrReferenceNo", error.field)
            assertEquals("INVALID_ECR_REF", error.code)
        }
    }

    @Test fun aPurchaseBeforeRegisterNeedsRegistration() {
        assertFailsWith<NamiException.RegisterRequired> { terminal.purchase("10.00", nextRef()) }
        assertFailsWith<NamiException.RegisterRequired> { terminal.startSession() }
    }

    @Test fun aTerminalThatForgotItsRegistrationAsksForItAgain() {
        registered()
        sim.post("/reboot")
        assertFailsWith<NamiException.RegisterRequired> { terminal.purchase("10.00", nextRef()) }
        assertNull(terminal.registration())
    }

    @Test fun noAnswerWithinTheDeadlineIsATimeoutCarryingTheReference() {
        Terminal.tcp(sim.host, sim.port.toUShort(), quickConfig(cardPresent = Duration.ofMillis(600))).use { t ->
            t.register(CASH_REGISTER)
            sim.fault("never-answer")
            val ref = nextRef()
            val started = System.nanoTime()
            val error = assertFailsWith<NamiException.Timeout> { t.purchase("10.00", ref) }
            assertEquals(ref, error.ecrReference)
            assertTrue((System.nanoTime() - started) / 1_000_000 < 5_000)
            assertTrue(t.duplicate(ref, nextRef()).approved)
        }
    }

    @Test fun aLinkClosedAfterTheRequestLeavesTheOutcomeUnknown() {
        registered()
        sim.fault("close-after-request")
        val ref = nextRef()
        val error = assertFailsWith<NamiException.OutcomeUnknown> { terminal.purchase("10.00", ref) }
        assertEquals(ref, error.ecrReference)
        assertEquals("PURCHASE", error.txnType)
        val recovered = terminal.duplicate(ref, nextRef())
        assertTrue(recovered.approved)
        assertEquals("10.00", recovered.amount)
    }

    @Test fun aClosedPortIsUnableToConnect() {
        Terminal.tcp("127.0.0.1", closedPort().toUShort(), quickConfig()).use { t ->
            assertFailsWith<NamiException.UnableToConnect> { t.register(CASH_REGISTER) }
            assertFailsWith<NamiException.UnableToConnect> { t.connect() }
        }
    }

    @Test fun badSettingsAreRefusedByName() {
        assertEquals("host", assertFailsWith<NamiException.InvalidInput> { Terminal.tcp("", 2345u) }.field)
        val zero = assertFailsWith<NamiException.InvalidInput> {
            Terminal.tcp("127.0.0.1", 2345u, TerminalConfig(adminTimeout = Duration.ZERO))
        }
        assertEquals("admin_timeout", zero.field)
        val baud = assertFailsWith<NamiException.InvalidInput> {
            Terminal.serial("/dev/ttyACM0", SerialSettings(baudRate = 1234u))
        }
        assertEquals("baudRate", baud.field)
        Terminal.serial("/dev/nami-no-such-port", SerialSettings(parity = Parity.EVEN)).use {
            assertEquals("/dev/nami-no-such-port", it.key())
        }
    }

    @Test fun theListenerSeesEachStateChange() {
        val events = Events()
        terminal.setListener(events)
        terminal.register(CASH_REGISTER)
        terminal.purchase("10.00", nextRef())
        val names = events.names()
        for (expected in listOf("connecting", "connected", "requestSent", "registered", "waitingForCard", "responseReceived")) {
            assertContains(names, expected)
        }
        synchronized(events.seen) {
            assertTrue(events.seen.all { (key, json) -> key == sim.key && json.jsonValue("terminal") == sim.key })
        }
        val response = events.seen.last { it.second.jsonValue("event") == "responseReceived" }.second
        assertEquals("000", response.jsonValue("responseCode"))
        assertEquals("true", response.jsonValue("approved"))
        terminal.setListener(null)
        val count = events.seen.size
        terminal.checkStatus(nextRef())
        assertEquals(count, events.seen.size)
    }

    @Test fun aListenerThatThrowsNeverBreaksTheCall() {
        terminal.setListener(object : EventListener {
            override fun onEvent(terminal: String, eventJson: String) = throw IllegalStateException("screen is gone")
        })
        assertTrue(terminal.register(CASH_REGISTER).approved)
        assertTrue(terminal.purchase("1.00", nextRef()).approved)
    }

    @Test fun cancelFromTheListenerEndsTheCardWait() {
        registered()
        sim.cardTap(true)
        terminal.setListener(object : EventListener {
            override fun onEvent(terminal: String, eventJson: String) {
                if (eventJson.jsonValue("event") == "waitingForCard") this@TerminalTest.terminal.cancel()
            }
        })
        assertFailsWith<NamiException.Cancelled> { terminal.purchase("10.00", nextRef()) }
    }

    @Test fun theLogHookReceivesTheLibraryLogLines() {
        registered()
        val lines = Lines()
        assertTrue(setLogSink(lines, LogLevel.TRACE))
        try {
            terminal.purchase("10.00", nextRef())
        } finally {
            setLogSink(null)
        }
        assertTrue(lines.lines.isNotEmpty())
        synchronized(lines.lines) {
            assertTrue(lines.lines.any { it.first == LogLevel.TRACE })
            assertTrue(lines.lines.all { it.second.startsWith("nami") })
            assertTrue(lines.lines.any { it.third.contains("frame=") })
        }
        val count = lines.lines.size
        terminal.checkStatus(nextRef())
        assertEquals(count, lines.lines.size)
    }

    @Test fun listSerialPortsReturnsAList() {
        val ports = listSerialPorts()
        assertTrue(ports.all { it.deviceId.isNotEmpty() })
    }
}

class CardNumberTest {
    private val fullPan = "5888451712711234"

    @Test fun aFullCardNumberFromTheTerminalNeverReachesTheApplication() {
        val sim = Sim("--full-pan")
        val lines = Lines()
        val events = Events()
        try {
            Terminal.tcp(sim.host, sim.port.toUShort(), quickConfig()).use { t ->
                t.setListener(events)
                assertTrue(setLogSink(lines, LogLevel.TRACE))
                t.register(CASH_REGISTER)
                val sale = t.purchase("10.00", "12345678990001")
                val copy = t.duplicate("12345678990001", "12345678990002")
                for (result in listOf(sale, copy)) {
                    assertEquals("588845******1234", result.maskedPan)
                    val raw = result.rawHex.chunked(2).map { it.toInt(16).toByte() }.toByteArray().toString(Charsets.ISO_8859_1)
                    val text = (result.fields + result.parsed.values + result.rawHex + raw).joinToString(" ")
                    assertFalse(text.contains(fullPan))
                }
            }
        } finally {
            setLogSink(null)
            sim.stop()
        }
        val panHex = fullPan.toByteArray().joinToString("") { "%02x".format(it) }
        synchronized(lines.lines) {
            assertTrue(lines.lines.none { it.third.contains(fullPan) || it.third.contains(panHex) })
        }
        synchronized(events.seen) { assertTrue(events.seen.none { it.second.contains(fullPan) }) }
    }
}
