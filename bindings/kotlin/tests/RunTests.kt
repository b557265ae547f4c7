// Runs the JUnit 4 suites and prints `N passed, N failed` (JUnitCore's own summary is not a
// closing line the CI recognises). Exit status 1 when a test failed.
package sa.nami.tests

import kotlin.system.exitProcess
import org.junit.runner.JUnitCore
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener

fun main() {
    val core = JUnitCore()
    core.addListener(object : RunListener() {
        override fun testFailure(failure: Failure) {
            println("FAIL ${failure.testHeader}: ${failure.trace}")
        }
    })
    val result = core.run(TerminalTest::class.java, CardNumberTest::class.java, MiddlewareTest::class.java)
    println("kotlin: ${result.runCount} tests in ${result.runTime / 1000.0} s")
    println("${result.runCount - result.failureCount} passed, ${result.failureCount} failed")
    exitProcess(if (result.wasSuccessful()) 0 else 1)
}
