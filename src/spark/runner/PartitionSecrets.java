package sps.runner;

import java.util.Iterator;
import java.util.NoSuchElementException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.function.FlatMapFunction2;

/**
 * Puts each partition's own secret in front of its rows, inside the task that serves it.
 *
 * <p>A Python task function travels to every executor that runs any task of the stage, so a secret
 * in it would reach every partition's executor. A partition of a parallelized collection travels
 * only with its own task: zipping the rows with such a collection of secrets, one per partition,
 * hands each task its own secret and no other.
 */
public final class PartitionSecrets {
  private PartitionSecrets() {}

  /**
   * The rows of each partition, preceded by the one element of the same partition of {@code
   * secrets}. Both have the same number of partitions.
   *
   * @param rows a JavaRDD of the elements PySpark reads (byte arrays or strings)
   * @param secrets a JavaRDD of byte arrays, one per partition
   */
  @SuppressWarnings("unchecked")
  public static JavaRDD<Object> secretFirst(Object rows, Object secrets) {
    return ((JavaRDD<Object>) rows).zipPartitions((JavaRDD<byte[]>) secrets, new SecretFirst());
  }

  /** Yields the secret, then the rows, reading neither before it is asked for. */
  static final class SecretFirst implements FlatMapFunction2<Iterator<Object>, Iterator<byte[]>, Object> {
    private static final long serialVersionUID = 1L;

    @Override
    public Iterator<Object> call(Iterator<Object> rows, Iterator<byte[]> secret) {
      return new Iterator<Object>() {
        @Override
        public boolean hasNext() {
          return secret.hasNext() || rows.hasNext();
        }

        @Override
        public Object next() {
          if (secret.hasNext()) return secret.next();
          if (rows.hasNext()) return rows.next();
          throw new NoSuchElementException();
        }
      };
    }
  }
}
