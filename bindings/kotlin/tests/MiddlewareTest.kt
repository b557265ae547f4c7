// `sa.nami.Middleware` (the service in process) against `nami-sim`, with the REST paths and bodies.
package sa.nami.tests

import java.nio.file.Files
import java.nio.file.Path
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import org.junit.After
import org.junit.Before
import org.junit.Test
import sa.nami.Middleware
import sa.nami.MiddlewareOptions
import sa.nami.NamiException

class MiddlewareTest {
    private lateinit var sim: Sim
    private lateinit var dir: Path
    private lateinit var middleware: Middleware

    @Before fun start() {
        sim = Sim()
        dir = Files.createTempDirectory("nami-kt-")
        middleware = Middleware.open(dir.resolve("state").toString(), MiddlewareOptions(restoreConnections = false))
    }

    @After fun stop() {
        middleware.shutdown()
        middleware.close()
        sim.stop()
        dir.toFile().deleteRecursively()
    }

    private fun tcp(paymentRequest: String) =
        """{"tcpipcomData":{"ip":"${sim.host}","port":${sim.port}},"paymentRequest":$paymentRequest}"""

    private fun register() =
        middleware.call("/performTransactionTCPIP", tcp("""{"txnType":"REGISTER","cashRegisterNo":"$CASH_REGISTER"}"""))

    @Test fun aPurchaseThroughPerformTransactionTcpip() {
        val registered = register()
        assertEquals("200", registered.jsonValue("statusCode"))
        assertEquals(TERMINAL_ID, registered.jsonValue("terminalId"))

        val ref = nextRef()
        val body = tcp("""{"txnType":"PURCHASE","amount":"10.00","ecrReferenceNo":"$ref","jsonResponse":true}""")
        val sale = middleware.call("/performTransactionTCPIP", body)
        assertEquals("200", sale.jsonValue("statusCode"))
        assertEquals("true", sale.jsonValue("approved"))
        assertEquals("588845******1234", sale.jsonValue("cardNumber"))

        // The same reference again is the stored result, not a second charge.
        assertEquals("true", middleware.call("/performTransactionTCPIP", body).jsonValue("replay"))

        val journal = middleware.transactions("""{"state":"approved"}""")
        assertEquals("1", journal.jsonValue("count"))
        assertEquals(ref, journal.jsonValue("ecrReferenceNo"))
        assertEquals("1", middleware.transaction(ref).jsonValue("count"))
        assertEquals("0", middleware.transaction(nextRef()).jsonValue("count"))

        val status = middleware.dispatch("/registrationStatus", """{"ip":"${sim.host}","port":${sim.port}}""")
        assertEquals(200.toUShort(), status.status)
        assertEquals("true", status.body.jsonValue("registered"))
        assertEquals(404.toUShort(), middleware.dispatch("/no-such-endpoint").status)
    }

    @Test fun aBadJournalFilterIsInvalidInput() {
        val error = assertFailsWith<NamiException.InvalidInput> { middleware.transactions("""{"state":"lost"}""") }
        assertTrue(error.detail.contains("state"))
    }

    @Test fun nextEcrReferenceGivesFreshReferences() {
        val first = middleware.nextEcrReference(CASH_REGISTER)
        val second = middleware.nextEcrReference(CASH_REGISTER)
        assertTrue(first.startsWith(CASH_REGISTER) && first.length == 14 && first != second)
        assertFailsWith<NamiException.InvalidInput> { middleware.nextEcrReference("1") }
    }

    @Test fun cancelFromAnotherThreadEndsTheCallAndTheListenerSeesIt() {
        val events = Events()
        assertFalse(middleware.cancel())
        middleware.setListener(events)
        register()
        sim.cardTap(true)
        val ref = nextRef()
        val pending = InThread {
            middleware.call("/performTransactionTCPIP", tcp("""{"txnType":"PURCHASE","amount":"10.00","ecrReferenceNo":"$ref"}"""))
        }
        sim.waitForCard()
        val started = System.nanoTime()
        assertTrue(middleware.cancel())
        pending.join()
        assertNull(pending.error)
        assertEquals("CANCELLED", pending.result!!.jsonValue("statusCode"))
        assertEquals(ref, pending.result!!.jsonValue("ecrReferenceNo"))
        assertTrue((pending.endedAt - started) / 1_000_000 < 2_000)
        synchronized(events.seen) {
            assertTrue(events.seen.any { (key, json) -> key == sim.key && json.jsonValue("event") == "waitingForCard" })
        }
        middleware.setListener(null)
    }

    @Test fun aMiddlewareInAnUnusableDirectoryIsAStorageError() {
        val blocker = dir.resolve("file").toFile().apply { writeText("not a directory") }
        assertFailsWith<NamiException.Storage> { Middleware.open(blocker.resolve("state").path) }
    }
}
